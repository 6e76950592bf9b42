"""Layout A (the origin project's): one file per split, a `sim_*` group per simulation holding
`images` (T, C, H, W). Written by the generator with physical values; read natively."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rs.data.meta import (
    DataError,
    SimulationMeta,
    attr_list,
    attr_scalars,
    attr_text,
    h5dataset,
    h5open,
    h5reader,
    read_small,
)

SPLIT_NAMES = {s: (f"{s}.h5", f"simulation_{s}.h5") for s in ("train", "val", "test")}


@dataclass
class Group:
    """One simulation to write: datasets (images first) and attributes."""

    name: str
    datasets: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)


def write_file(path: Path, groups: list[Group], root_attrs: dict[str, Any], compression: str | None = "lzf") -> None:
    """Write atomically: a temporary name, then rename, so an interrupted run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            _set_attrs(f, root_attrs)
            for g in groups:
                grp = f.create_group(g.name, track_order=True)
                _set_attrs(grp, g.attrs)
                for key, data in g.datasets.items():
                    frame_chunks = key in ("images", "thermal_field") and data.ndim == 4 and data.shape[0] > 0
                    grp.create_dataset(
                        key, data=data, chunks=(1, *data.shape[1:]) if frame_chunks else None,
                        compression=compression if frame_chunks else None, track_times=False,
                    )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _set_attrs(obj: h5py.Group, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            obj.attrs[key] = np.array(value, dtype=h5py.string_dtype())
        elif value is not None:
            obj.attrs[key] = value


def is_layout_a(f: h5py.File) -> bool:
    return any(k.startswith("sim_") and isinstance(f[k], h5py.Group) for k in f)


def scan(path: str | Path) -> list[SimulationMeta]:
    """Metadata of every `sim_*` group; a missing `images` or a wrong rank is a clear error."""
    sims = []
    with h5open(path) as f:
        fields = attr_list(f.attrs.get("fields"))
        root_mean, root_std = f.attrs.get("channel_mean"), f.attrs.get("channel_std")
        root_params = attr_scalars(f.attrs)
        for key in sorted(k for k in f if k.startswith("sim_")):
            grp = f[key]
            if "images" not in grp:
                raise DataError(f"{path}:/{key}/images: missing; layout A needs images (T, C, H, W)")
            ds = grp["images"]
            if ds.ndim != 4:
                raise DataError(f"{path}:/{key}/images: rank {ds.ndim}, expected 4 (T, C, H, W)")
            T, C, H, W = ds.shape
            names = tuple(fields) if fields else tuple(f"ch{i}" for i in range(C))
            if len(names) != C:
                raise DataError(f"{path}:/ fields attr lists {len(names)} names but images have {C} channels")
            mean = grp.attrs.get("channel_mean", root_mean)
            std = grp.attrs.get("channel_std", root_std)
            norm = attr_text(grp.attrs.get("norm_type_images", "none")).lower()
            sims.append(SimulationMeta(
                file=str(path), key=key, layout="A", n_frames=T, channels=C, height=H, width=W,
                fields=names, normalized=norm == "zscore",
                channel_mean=None if mean is None else tuple(np.asarray(mean, float).ravel()),
                channel_std=None if std is None else tuple(np.asarray(std, float).ravel()),
                params={**root_params, **attr_scalars(grp.attrs)},
                has_thermal="thermal_field" in grp,
            ))
    return sims


def read_frames(meta: SimulationMeta, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as stored, float32 (n, C, H, W)."""
    return np.asarray(h5dataset(meta.file, f"{meta.key}/images")[start:stop], dtype=np.float32)


def read_series(meta: SimulationMeta, name: str) -> np.ndarray | None:
    """A per-frame series of the simulation (read-only, cached per file version), or None when absent."""
    return read_small(meta.file, f"{meta.key}/{name}")


def read_thermal(meta: SimulationMeta, start: int, stop: int) -> np.ndarray:
    """Temperature (K, relative to T0) as (n, 1, H, W): stored, or T = T0 + G·(x − x0 − V·t)."""
    with h5reader(meta.file) as f:
        grp = f[meta.key]
        if "thermal_field" in grp:
            return np.asarray(grp["thermal_field"][start:stop], dtype=np.float32)
        p = meta.params
        missing = [k for k in ("thermal_gradient_raw", "pulling_speed", "dx") if k not in p]
        if missing:
            raise DataError(f"{meta.file}:/{meta.key}: no thermal_field and attrs {missing} to derive it")
        n = stop - start
        t = np.asarray(grp["time_phys"][start:stop], float) if "time_phys" in grp else np.zeros(n)
        off = np.asarray(grp["window_offset"][start:stop], float) if "window_offset" in grp else np.zeros(n)
    dx = p["dx"]
    x = p.get("x_min", 0.0) + (np.arange(meta.width) + 0.5) * dx
    x_lab = x[None, :] + off[:, None] * dx  # (n, W)
    x0 = p.get("x0_dx", 0.0) * dx
    T = p.get("T0", 0.0) + p["thermal_gradient_raw"] * (x_lab - x0 - p["pulling_speed"] * t[:, None])
    return np.broadcast_to(T[:, None, None, :], (n, 1, meta.height, meta.width)).astype(np.float32)


def split_file(root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_file():
            return root / name
    return None
