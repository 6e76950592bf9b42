"""Loading: schema defaults < base YAML < experiment YAML < env RS_* < tune < CLI --set, with provenance."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rs.config import derived as derived_mod
from rs.config.errors import ConfigError
from rs.config.schema import ExperimentConfig
from rs.config.space import check_space
from rs.config.tree import flatten, get_path, is_derived, leaf_key, leaves, unflatten

ENV_PREFIX = "RS_"
# One layer: (dotted path, value, source) in the order they apply.
Layer = list[tuple[str, Any, str]]


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    tune: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> ExperimentConfig:
    """Resolve one experiment: every leaf typed, validated, derived and tagged with its source."""
    layers: Layer = file_layers(Path(path)) if path is not None else []
    layers += env_values(os.environ if env is None else env)
    layers += [(leaf_key(ExperimentConfig, k, "tune"), v, "tune") for k, v in (tune or {}).items()]
    layers += parse_sets(overrides)

    flat: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value, src in layers:
        _refuse_derived(key, src)
        flat[key], sources[key] = value, src

    name = name or (Path(path).stem if path is not None else "experiment")
    for key, default in (("train.run_name", name), ("tune.name", f"{name}-tune")):
        if flat.get(key) is None:
            flat[key], sources[key] = default, "default:config-name"
    cfg = build(flat, sources)
    check_space(cfg.tune.space)
    return with_meta(cfg, name, sources)


def apply_overrides(cfg: ExperimentConfig, overrides: Iterable[str]) -> ExperimentConfig:
    """A resolved config with `--set` overrides on top (their source is "cli"); derived values recomputed."""
    flat: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, info in leaves(ExperimentConfig).items():
        if not is_derived(info):
            flat[key], sources[key] = get_path(cfg, key), cfg.sources.get(key, "default")
    for key, value, src in parse_sets(overrides):
        _refuse_derived(key, src)
        flat[key], sources[key] = value, src
    out = build(flat, sources)
    check_space(out.tune.space)
    return with_meta(out, cfg.name, sources)


def build(flat: dict[str, Any], sources: Mapping[str, str]) -> ExperimentConfig:
    """Validate primitives, then fill every derived value."""
    cfg = _validate(unflatten(flat), sources)
    values = derived_mod.compute(lambda p: get_path(cfg, p))
    nested = cfg.model_dump()
    for key, value in values.items():
        node = nested
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return _validate(nested, sources)


def with_meta(cfg: ExperimentConfig, name: str, sources: Mapping[str, str]) -> ExperimentConfig:
    all_sources = {}
    for key, info in leaves(ExperimentConfig).items():
        all_sources[key] = "derived" if is_derived(info) else sources.get(key, "default")
    cfg._name = name
    cfg._sources = all_sources
    return cfg


def _refuse_derived(key: str, src: str) -> None:
    info = leaves(ExperimentConfig).get(key)
    if info is not None and is_derived(info):
        inputs = ", ".join(derived_mod.inputs_of(key))
        raise ConfigError(f"{key}: is derived and cannot be set; set {inputs} instead [{src}]")


def _validate(nested: dict[str, Any], sources: Mapping[str, str]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(nested)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, sources)) from None


def describe_validation_error(err: ValidationError, sources: Mapping[str, str]) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    src = _source_for(loc, sources)
    msg = first["msg"].removeprefix("Value error, ")
    got = ""
    if first["type"] not in ("value_error", "assertion_error"):
        got = f" (got {first['input']!r})"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{loc or 'config'}: {msg}{got} [{src}]{more}"


def _source_for(loc: str, sources: Mapping[str, str]) -> str:
    # A tuple element or a model-level check points below or above a leaf: find the nearest one.
    candidates = [k for k in sources if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")]
    return sources[max(candidates, key=len)] if candidates else "default"


# --- layers -----------------------------------------------------------------------------------


def _label(path: Path) -> str:
    try:
        return f"file:{path.resolve().relative_to(Path.cwd())}"
    except ValueError:
        return f"file:{path.resolve()}"


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{line}: unparsable YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    return data


def file_layers(path: Path, _stack: tuple[Path, ...] = ()) -> Layer:
    """Base files (via `extends:`, a path or a list, relative to the file) first, then the file."""
    real = path.resolve()
    if real in _stack:
        chain = " -> ".join(str(p) for p in (*_stack, real))
        raise ConfigError(f"{path}: extends cycle: {chain}")
    data = read_yaml(path)
    bases = data.pop("extends", None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: extends must be a path or a list of paths")
    layers: Layer = []
    for base in bases:
        layers += file_layers(real.parent / base, (*_stack, real))
    label = _label(path)
    layers += [(k, v, label) for k, v in flatten(ExperimentConfig, data, label).items()]
    return layers


def parse_scalar(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{where}: value {text!r} is not a YAML scalar or flow collection") from None


def env_values(env: Mapping[str, str]) -> Layer:
    """RS_<SECTION>__<FIELD>[__<FIELD>…] variables, in name order."""
    out: Layer = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        src = f"env:{var}"
        key = leaf_key(ExperimentConfig, var[len(ENV_PREFIX):].lower().replace("__", "."), src)
        out.append((key, parse_scalar(env[var], src), src))
    return out


def parse_sets(items: Iterable[str]) -> Layer:
    out: Layer = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or " " in key:
            raise ConfigError(f"--set {item!r}: expected dotted.path=value, e.g. --set train.lr=0.003")
        out.append((leaf_key(ExperimentConfig, key, "cli"), parse_scalar(text, f"--set {key}"), "cli"))
    return out
