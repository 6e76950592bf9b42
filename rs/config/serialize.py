"""Resolved config + provenance to YAML/JSON and back, to an equal object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rs.config import derived as derived_mod
from rs.config.errors import ConfigError
from rs.config.load import describe_validation_error
from rs.config.schema import ExperimentConfig
from rs.config.tree import get_path, leaves

FORMAT_VERSION = 1


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "sources": cfg.sources,
    }


def from_dict(data: dict[str, Any], where: str = "resolved config") -> ExperimentConfig:
    if not isinstance(data, dict) or {"name", "config", "sources"} - set(data):
        raise ConfigError(f"{where}: not a resolved rs config (needs name, config, sources)")
    try:
        cfg = ExperimentConfig.model_validate(data["config"])
    except ValidationError as err:
        raise ConfigError(f"{where}: {describe_validation_error(err, {})}") from None
    # A resolved file is data, not an instruction: its derived values must agree with its primitives.
    for path, value in derived_mod.compute(lambda p: get_path(cfg, p)).items():
        if get_path(cfg, path) != value:
            raise ConfigError(f"{where}: {path} = {get_path(cfg, path)!r} disagrees with its inputs")
    cfg._name = str(data["name"])
    cfg._sources = {k: str(data["sources"].get(k, "default")) for k in leaves(ExperimentConfig)}
    return cfg


def provenance(cfg: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """Every leaf's final value (JSON form) and source."""
    dumped = cfg.model_dump(mode="json")
    out = {}
    for path, source in cfg.sources.items():
        node: Any = dumped
        for part in path.split("."):
            node = node[part]
        out[path] = {"value": node, "source": source}
    return out


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def to_json(cfg: ExperimentConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2, ensure_ascii=False)


def from_text(text: str, where: str = "resolved config") -> ExperimentConfig:
    try:
        data = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: unparsable resolved config: {err}") from None
    return from_dict(data, where)


def save(cfg: ExperimentConfig, path: Path) -> None:
    """Write atomically (temp name, then rename) so a crash never leaves half a file."""
    text = to_json(cfg) if path.suffix == ".json" else to_yaml(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def load_resolved(path: Path) -> ExperimentConfig:
    if not path.is_file():
        raise ConfigError(f"{path}: resolved config not found")
    return from_text(path.read_text(), str(path))


def experiment_yaml(cfg: ExperimentConfig, drop: tuple[str, ...] = ("train.run_name", "tune.")) -> str:
    """An experiment file `rs train` accepts (primitive leaves only; derived values are recomputed), e.g.
    the best trial of a sweep. Leaves under `drop` prefixes are left to their defaults."""
    from rs.config.tree import is_derived, unflatten

    flat = {k: get_path(cfg, k) for k, info in leaves(ExperimentConfig).items()
            if not is_derived(info) and not k.startswith(drop)}
    data = json.loads(json.dumps(unflatten(flat), default=str))  # Paths and tuples as plain YAML
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
