"""The typed experiment config: schema, loading with precedence and provenance, derived values."""

from rs.config.errors import ConfigError
from rs.config.load import load_config
from rs.config.schema import DESCRIPTORS, ExperimentConfig
from rs.config.serialize import from_dict, load_resolved, provenance, save, to_dict

__all__ = [
    "DESCRIPTORS",
    "ConfigError",
    "ExperimentConfig",
    "from_dict",
    "load_config",
    "load_resolved",
    "provenance",
    "save",
    "to_dict",
]
