"""Validation of `tune.space` against the schema: fields exist, are settable, and bounds type-check."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from rs.config.errors import ConfigError
from rs.config.tree import is_derived, leaf_key, leaves

_ARITY = {"uniform": 2, "loguniform": 2, "randint": 2, "quniform": 3}


def check_space(space: dict[str, dict[str, list[Any]]]) -> None:
    from rs.config.schema import ExperimentConfig

    for path, spec in space.items():
        where = f"tune.space.{path}"
        key = leaf_key(ExperimentConfig, path, "tune.space")
        info = leaves(ExperimentConfig)[key]
        if is_derived(info) or key.startswith("tune."):
            raise ConfigError(f"{where}: cannot be searched (derived or part of tune itself)")
        if len(spec) != 1:
            raise ConfigError(f"{where}: give exactly one distribution, got {sorted(spec) or 'none'}")
        (dist, args), = spec.items()
        _check_args(where, dist, args)
        ann = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        adapter = TypeAdapter(ann)
        values = args if dist == "choice" else args[:2]
        for value in values:
            try:
                adapter.validate_python(value)
            except ValidationError as err:
                msg = err.errors()[0]["msg"]
                raise ConfigError(f"{where}: {dist} value {value!r} is invalid for {key}: {msg}") from None


def _check_args(where: str, dist: str, args: list[Any]) -> None:
    if dist == "choice":
        if not args:
            raise ConfigError(f"{where}: choice needs at least one value")
        return
    n = _ARITY[dist]
    if len(args) != n or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        form = "[low, high, q]" if n == 3 else "[low, high]"
        raise ConfigError(f"{where}: {dist} needs {n} numbers {form}, got {args!r}")
    lo, hi = args[0], args[1]
    if not lo < hi:
        raise ConfigError(f"{where}: {dist} needs low < high, got {args!r}")
    if dist == "loguniform" and lo <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0, got {args!r}")
    if dist == "randint" and not all(isinstance(a, int) for a in args):
        raise ConfigError(f"{where}: randint needs integers, got {args!r}")
    if dist == "quniform" and args[2] <= 0:
        raise ConfigError(f"{where}: quniform needs q > 0, got {args!r}")
