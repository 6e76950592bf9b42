"""`tune.space` (validated by rs.config.space) -> Ray Tune search-space domains, keyed by dotted field."""

from __future__ import annotations

from typing import Any


def to_tune(space: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    from ray import tune

    builders = {
        "choice": lambda a: tune.choice(list(a)),
        "uniform": lambda a: tune.uniform(a[0], a[1]),
        "loguniform": lambda a: tune.loguniform(a[0], a[1]),
        "randint": lambda a: tune.randint(a[0], a[1] + 1),  # inclusive upper bound, as written in YAML
        "quniform": lambda a: tune.quniform(a[0], a[1], a[2]),
    }
    out = {}
    for path, spec in space.items():
        ((dist, args),) = spec.items()
        out[path] = builders[dist](args)
    return out
