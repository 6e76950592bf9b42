"""Walking the schema as a tree of dotted leaf paths (the only place that digs into nested dicts)."""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rs.config.errors import ConfigError


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@cache
def leaves(cls: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Every leaf field of a section class, by dotted path."""
    out: dict[str, FieldInfo] = {}
    for name, info in cls.model_fields.items():
        sub = _section_type(info.annotation)
        if sub is not None:
            out.update(leaves(sub, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = info
    return out


def is_derived(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("derived"))


def field_unit(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    return extra.get("unit") if isinstance(extra, dict) else None  # type: ignore[return-value]


def suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_path_error(path: str, cls: type[BaseModel], where: str) -> ConfigError:
    known = list(leaves(cls)) + _section_paths(cls)
    return ConfigError(f"{path}: unknown field{suggest(path, known)} [{where}]")


def _section_paths(cls: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in cls.model_fields.items():
        sub = _section_type(info.annotation)
        if sub is not None:
            out.append(f"{prefix}{name}")
            out += _section_paths(sub, f"{prefix}{name}.")
    return out


def leaf_key(cls: type[BaseModel], key: str, where: str) -> str:
    """`key` if it names a leaf of the schema, else a one-line error with a suggestion."""
    all_leaves = leaves(cls)
    if key in all_leaves:
        return key
    if any(k.startswith(key + ".") for k in all_leaves):
        raise ConfigError(f"{key}: is a section; set one of its fields, e.g. {key}.<field> [{where}]")
    raise unknown_path_error(key, cls, where)


def flatten(
    cls: type[BaseModel], data: Any, where: str, prefix: str = "", root: type[BaseModel] | None = None
) -> dict[str, Any]:
    """A nested mapping as {dotted leaf path: value}, rejecting keys the schema does not know."""
    root = root or cls
    if not isinstance(data, dict):
        label = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{label}: expected a mapping, got {type(data).__name__} [{where}]")
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        info = cls.model_fields.get(str(key))
        if info is None:
            raise unknown_path_error(path, root, where)
        sub = _section_type(info.annotation)
        if sub is not None:
            out.update(flatten(sub, value, where, f"{path}.", root))
        else:
            out[path] = value
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def get_path(obj: BaseModel, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj
