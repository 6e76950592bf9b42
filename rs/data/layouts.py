"""One reader interface over layouts A and B: sniff, scan simulations, read frame ranges."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from rs.data import layout_a, layout_b, scan_cache
from rs.data.meta import DataError, SimulationMeta, file_key, h5open

LAYOUTS: dict[str, ModuleType] = {"A": layout_a, "B": layout_b}


def sniff(path: str | Path) -> str:
    with h5open(path) as f:
        if layout_a.is_layout_a(f):
            return "A"
        if layout_b.is_layout_b(f):
            return "B"
    raise DataError(
        f"{path}: neither layout A (sim_* groups with images) nor layout B (t0_fields, dimensions); "
        "see DESIGN 'HDF5 layout' or force data.layout"
    )


_SCANS: dict[tuple, list[SimulationMeta]] = {}


def scan(path: str | Path, layout: str = "auto") -> list[SimulationMeta]:
    """Typed metadata of every simulation in one file; h5py objects never leave this call. Remembered per
    file version, in this process and on disk (`rs.data.scan_cache`): reading thousands of HDF5 attributes
    costs seconds, and every split, epoch and process asks."""
    try:
        version = file_key(path)
    except OSError:
        raise DataError(f"{path}: file not found") from None
    key: tuple = (*version, layout)
    if key not in _SCANS:
        metas = scan_cache.load(path, layout, version)
        if metas is None:
            chosen = sniff(path) if layout == "auto" else layout
            if chosen not in LAYOUTS:
                raise DataError(f"{path}: unknown layout {layout!r}; use auto, A or B")
            metas = LAYOUTS[chosen].scan(path)
            scan_cache.store(path, layout, version, metas)
        _SCANS[key] = metas
    return layout_b.with_well_stats(list(_SCANS[key]), path)


def read_frames(meta: SimulationMeta, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as stored: float32 (n, C, H, W); see `meta.normalized`."""
    if not 0 <= start <= stop <= meta.n_frames:
        raise DataError(f"{meta.name}: frames [{start}, {stop}) outside 0..{meta.n_frames}")
    return LAYOUTS[meta.layout].read_frames(meta, start, stop)


def read_thermal(meta: SimulationMeta, start: int, stop: int) -> np.ndarray:
    if meta.layout != "A":
        raise DataError(f"{meta.name}: layout {meta.layout} has no thermal field; set data.thermal_input=false")
    return layout_a.read_thermal(meta, start, stop)


# The Well names its validation split `valid/`; `val` is this project's name for it.
SPLIT_ALIASES = {"val": ("val", "valid")}


def split_paths(root: str | Path, split: str, layout: str = "auto") -> list[Path]:
    """The files of one split under `root`: layout A `train.h5` / `simulation_train.h5`, layout B `train/*.hdf5`
    (`val` also as The Well's `valid/`); `root` may be a Well dataset folder, whose splits live in `data/`."""
    root = Path(root)
    names = SPLIT_ALIASES.get(split, (split,))
    found: list[Path] = []
    looked: list[str] = []
    if layout in ("auto", "A"):
        a = layout_a.split_file(root, split)
        found += [a] if a else []
        looked += [f"{split}.h5", f"simulation_{split}.h5"]
    if layout in ("auto", "B") and not found:
        for base, prefix in ((root, ""), (root / "data", "data/")):
            for name in names:
                looked.append(f"{prefix}{name}/*.hdf5")
                found = found or layout_b.split_files(base, name)
    if not found:
        raise DataError(
            f"{root}: no {split} split (looked for {', '.join(looked)}); "
            f"generate data with `rs data generate` or set data.root"
        )
    return found


def open_split(root: str | Path, split: str, layout: str = "auto") -> list[SimulationMeta]:
    return [m for p in split_paths(root, split, layout) for m in scan(p, layout)]
