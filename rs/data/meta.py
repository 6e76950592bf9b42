"""Typed per-simulation metadata shared by every layout, and the data error type."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rs.errors import RsError

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")  # parallel filesystems (Lustre/GPFS)


class DataError(RsError):
    """A bad data file or simulation; the message names FILE:/group/dataset and what to do."""


@dataclass(frozen=True)
class SimulationMeta:
    """Where one simulation lives and what it holds; cheap to pickle (no h5py objects)."""

    file: str
    key: str  # layout A: group name; layout B: trajectory index as text
    layout: str  # "A" or "B"
    n_frames: int
    channels: int
    height: int
    width: int
    fields: tuple[str, ...]
    normalized: bool  # images already z-scored with channel_mean/std
    channel_mean: tuple[float, ...] | None
    channel_std: tuple[float, ...] | None
    params: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    has_thermal: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.n_frames, self.channels, self.height, self.width)

    @property
    def name(self) -> str:
        return f"{Path(self.file).name}:{self.key}"

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.height * self.width * 4

    def n_windows(self, history: int, stride: int, unroll: int = 1) -> int:
        """How many (input, target) samples the simulation yields."""
        span = (history - 1) + stride * unroll
        return max(0, self.n_frames - span)


def _open(p: Path) -> h5py.File:
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        # No chunk cache: reads here take whole chunks once (a cache only adds a copy), and the dataset
        # objects kept open by `h5dataset` would each hold up to 8 MB of it.
        return h5py.File(p, "r", rdcc_nbytes=0)
    except OSError as err:
        reason = "truncated or corrupt HDF5 file" if h5py.is_hdf5(p) else "not an HDF5 file"
        raise DataError(f"{p}: {reason} ({str(err).split('(')[0].strip()}); regenerate or re-copy it") from None


def file_key(path: str | Path) -> tuple[str, int, int, int]:
    """Identity of a file's current contents: an atomic rewrite (new inode) or an append changes it."""
    st = os.stat(path)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


_HANDLES: OrderedDict[tuple[str, int, int, int], h5py.File] = OrderedDict()
_MAX_HANDLES = 8


def _version(p: Path) -> tuple[str, int, int, int]:
    try:
        return file_key(p)
    except OSError:
        raise DataError(f"{p}: file not found") from None


@contextmanager
def h5reader(path: str | Path) -> Iterator[h5py.File]:
    """A read handle kept open across calls in this process (read tasks touch the same file many times,
    and opening costs more than reading one chunk); keyed by inode, size and mtime so a rewritten file
    is reopened. Use `h5open` for one-off reads."""
    p = Path(path)
    key = _version(p)
    f = _HANDLES.pop(key, None)
    if f is None or not f.id.valid:
        f = _open(p)
    _HANDLES[key] = f
    while len(_HANDLES) > _MAX_HANDLES:
        _HANDLES.popitem(last=False)[1].close()
    yield f


_DATASETS: OrderedDict[tuple[tuple[str, int, int, int], str], h5py.Dataset] = OrderedDict()
_MAX_DATASETS = 4096


def h5dataset(path: str | Path, name: str) -> h5py.Dataset:
    """The dataset at `name` through this process's kept-open handle, looked up once per file version: in a
    file of hundreds of groups one lookup costs ~0.2 ms, a fifth of reading a 64-frame chunk. A dataset of
    a handle closed since (evicted or rewritten) is no longer valid and is looked up again."""
    key = (_version(Path(path)), name)
    ds = _DATASETS.pop(key, None)
    if ds is None or not ds.id.valid:
        with h5reader(path) as f:
            ds = f[name]
    _DATASETS[key] = ds
    while len(_DATASETS) > _MAX_DATASETS:
        _DATASETS.popitem(last=False)
    return ds


_SERIES: OrderedDict[tuple[tuple[str, int, int, int], str], np.ndarray | None] = OrderedDict()
_MAX_SERIES = 4096


def read_small(path: str | Path, name: str) -> np.ndarray | None:
    """A small dataset at `name` (a per-frame series), read once per version of the file in this process and
    returned read-only, or None when absent: read tasks ask for the same series for every chunk, and one
    h5py lookup and read costs about as much as decompressing five 64² frames."""
    key = (_version(Path(path)), name)
    if key in _SERIES:
        _SERIES.move_to_end(key)
        return _SERIES[key]
    with h5reader(path) as f:
        value = np.asarray(f[name][()]) if name in f else None
    if value is not None:
        value.setflags(write=False)
    _SERIES[key] = value
    while len(_SERIES) > _MAX_SERIES:
        _SERIES.popitem(last=False)
    return value


@contextmanager
def h5open(path: str | Path) -> Iterator[h5py.File]:
    """Open read-only with one clear error for missing, non-HDF5 or truncated files."""
    f = _open(Path(path))
    try:
        yield f
    finally:
        f.close()


def attr_scalars(attrs: Any) -> dict[str, float]:
    """Numeric scalar attributes as plain floats (process parameters, grid spacing, ...)."""
    out = {}
    for key, value in attrs.items():
        arr = np.asarray(value)
        if arr.ndim == 0 and np.issubdtype(arr.dtype, np.number):
            out[str(key)] = float(arr)
    return out


def attr_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def attr_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [attr_text(value)]
    return [attr_text(v) for v in np.asarray(value).ravel()]
