"""Simulation metadata remembered on disk across processes, per file version.

Scanning a layout-A file reads every group's HDF5 attributes, ~5 ms a simulation (h5py opens and converts
each of ~50 attributes), so a file of 1,000 simulations costs ~5 s at every `rs train` start, before Ray
even plans a read. The scan is a pure function of the file's bytes, so it is kept as JSON under
`$RS_CACHE_DIR/scans` (default `$XDG_CACHE_HOME/rs`, else `~/.cache/rs`; `RS_CACHE_DIR=` empty turns it
off), named by a hash of the file's absolute path, inode, size and mtime: a rewrite or an append is a new
name. Entries are written to a temporary name and renamed; an unreadable or unwritable entry is rescanned,
never an error. JSON, not pickle: the cache directory may be shared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from rs.data.meta import SimulationMeta

log = logging.getLogger(__name__)

VERSION = 1  # bump when SimulationMeta or a layout's scan changes what it records
ENV = "RS_CACHE_DIR"
MAX_ENTRIES = 256  # the least recently used beyond this are removed when one is written
_TUPLES = ("fields", "channel_mean", "channel_std")


def cache_dir() -> Path | None:
    if ENV in os.environ:
        return Path(os.environ[ENV]).expanduser() / "scans" if os.environ[ENV] else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rs" / "scans"


def _entry(path: str | Path, layout: str, version: tuple[str, int, int, int]) -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    _, ino, size, mtime = version
    ident = f"{VERSION}:{Path(path).resolve()}:{ino}:{size}:{mtime}:{layout}"
    return d / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.json"


def load(path: str | Path, layout: str, version: tuple[str, int, int, int]) -> list[SimulationMeta] | None:
    """The remembered scan of `path` at `version` (`rs.data.meta.file_key`), or None."""
    entry = _entry(path, layout, version)
    if entry is None or not entry.is_file():
        return None
    try:
        rows = json.loads(entry.read_text())
        os.utime(entry)  # recently used: pruned last
        return [SimulationMeta(file=str(path), **{k: tuple(v) if k in _TUPLES and v is not None else v
                                                   for k, v in r.items()}) for r in rows]
    except (OSError, ValueError, TypeError) as err:
        log.debug("scan cache %s unreadable (%s); rescanning", entry, err)
        return None


def store(path: str | Path, layout: str, version: tuple[str, int, int, int], metas: list[SimulationMeta]) -> None:
    entry = _entry(path, layout, version)
    if entry is None:
        return
    rows = [{k: v for k, v in dataclasses.asdict(m).items() if k != "file"} for m in metas]
    tmp: Path | None = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name: processes on several nodes may share the cache directory (and pids).
        fd, name = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.stem}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "w") as f:
            json.dump(rows, f)
        tmp.replace(entry)
        _prune(entry.parent)
    except OSError as err:
        log.debug("scan cache %s not written (%s)", entry, err)
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _prune(d: Path) -> None:
    entries = sorted(d.glob("*.json"), key=lambda e: e.stat().st_mtime_ns, reverse=True)
    for e in entries[MAX_ENTRIES:]:
        e.unlink(missing_ok=True)
