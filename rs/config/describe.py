"""Human-readable views of the schema and of a resolved config (used by `rs config`)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import annotated_types as at
from pydantic.fields import FieldInfo

from rs.config.schema import ExperimentConfig
from rs.config.serialize import provenance
from rs.config.tree import field_unit, is_derived, leaves

_BOUNDS = ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"), (at.Le, "le", "<="), (at.Lt, "lt", "<"))


def type_name(annotation: Any) -> str:
    """`tuple[int, int] | None`, not the constrained types' reprs (their bounds are the constraint column)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "choice"
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def constraint(info: FieldInfo) -> str:
    if typing.get_origin(info.annotation) is typing.Literal:
        return "{" + ", ".join(map(str, typing.get_args(info.annotation))) + "}"
    parts = []
    for meta in info.metadata:
        for cls, attr, sym in _BOUNDS:
            if isinstance(meta, cls):
                parts.append(f"{sym}{getattr(meta, attr)}")
        if isinstance(meta, at.MinLen):
            parts.append(f"len>={meta.min_length}")
    return " ".join(parts)


def schema_rows() -> list[dict[str, Any]]:
    rows = []
    for path, info in leaves(ExperimentConfig).items():
        default = "(derived)" if is_derived(info) else info.get_default(call_default_factory=True)
        rows.append(
            {
                "path": path,
                "type": type_name(info.annotation),
                "default": default,
                "constraint": constraint(info),
                "unit": field_unit(info) or "",
                "doc": info.description or "",
            }
        )
    return rows


def _fmt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value


def schema_table() -> str:
    lines = []
    for r in schema_rows():
        unit = f" [{r['unit']}]" if r["unit"] else ""
        lines.append(
            f"{r['path']:<42} {r['type']:<22} {_fmt(r['default']):<26} {r['constraint']:<20}"
            f" {r['doc']}{unit}".rstrip()
        )
    return "\n".join(lines)


def show_table(cfg: ExperimentConfig) -> str:
    lines = [f"# {cfg.name}: resolved config (value, source)"]
    for path, entry in provenance(cfg).items():
        lines.append(f"{path:<42} {_fmt(entry['value']):<34} {entry['source']}")
    return "\n".join(lines)
