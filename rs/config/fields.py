"""Field helpers shared by every config section: doc, unit and derived markers live in the schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def F(default: Any, doc: str, *, unit: str | None = None, **bounds: Any) -> Any:
    """A documented field; `unit` is shown by `rs config schema` for physical quantities."""
    extra: dict[str, Any] = {}
    if unit:
        extra["unit"] = unit
    return Field(default, description=doc, json_schema_extra=extra or None, **bounds)


def derived(doc: str, *, unit: str | None = None) -> Any:
    """A value computed by `rs.config.derived`; users cannot set it."""
    extra: dict[str, Any] = {"derived": True}
    if unit:
        extra["unit"] = unit
    return Field(None, description=doc, json_schema_extra=extra)


def _absolute(p: Path) -> Path:
    # Ray Train workers chdir into their own trial dirs, so relative paths break there. RS_BASE_DIR (set by
    # the Slurm templates and `rs cluster submit --base-dir`) anchors them where a job's temporary working
    # dir would lose them.
    p = Path(os.path.expanduser(p))
    base = os.environ.get("RS_BASE_DIR")
    return Path(os.path.abspath(Path(base) / p if base and not p.is_absolute() else p))


AbsPath = Annotated[Path, AfterValidator(_absolute)]
