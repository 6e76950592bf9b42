"""Layout B (The Well's): `t0_fields/<name>` (n_traj, n_steps, x, y), `t1_fields/<name>` (…, D), with
`sample_varying` / `time_varying` flags; one trajectory is one simulation. Spatial dims map to (H, W)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rs.data.meta import DataError, SimulationMeta, attr_list, h5open, h5reader


def is_layout_b(f: h5py.File) -> bool:
    return "t0_fields" in f or ("n_trajectories" in f.attrs and "dimensions" in f)


def _flag(ds: h5py.Dataset, name: str, default: bool = True) -> bool:
    return bool(np.asarray(ds.attrs.get(name, default)).all())


def _field_items(f: h5py.File) -> list[tuple[str, str, int | None]]:
    """(dataset path, channel name, vector component or None) in channel order."""
    items: list[tuple[str, str, int | None]] = []
    for order in ("t0_fields", "t1_fields"):
        if order not in f:
            continue
        grp = f[order]
        names = attr_list(grp.attrs.get("field_names")) or sorted(grp)
        for name in names:
            if name not in grp:
                raise DataError(f"{f.filename}:/{order}/{name}: listed in field_names but missing")
            if order == "t0_fields":
                items.append((f"{order}/{name}", name, None))
            else:
                dims = attr_list(f["dimensions"].attrs.get("spatial_dims")) or ["x", "y"]
                items += [(f"{order}/{name}", f"{name}_{d}", i) for i, d in enumerate(dims)]
    return items


def scan(path: str | Path) -> list[SimulationMeta]:
    with h5open(path) as f:
        if "dimensions" not in f or "time" not in f["dimensions"]:
            raise DataError(f"{path}:/dimensions/time: missing; layout B needs dimensions/{{time,x,y}}")
        n_steps = int(f["dimensions/time"].shape[0])
        spatial = attr_list(f["dimensions"].attrs.get("spatial_dims")) or ["x", "y"]
        if len(spatial) != 2:
            raise DataError(f"{path}: {len(spatial)} spatial dims; rs reads 2-D data only")
        H, W = (int(f[f"dimensions/{d}"].shape[0]) for d in spatial)
        items = _field_items(f)
        if not items:
            raise DataError(f"{path}:/t0_fields: no fields; layout B needs t0_fields or t1_fields datasets")
        n_traj = int(f.attrs.get("n_trajectories", 1))
        params = {}
        for name in attr_list(f.attrs.get("simulation_parameters")):
            if name in f.attrs and np.asarray(f.attrs[name]).ndim == 0:
                params[name] = float(f.attrs[name])
        per_traj = _scalar_params(f, n_traj)
        fields = tuple(ch for _, ch, _ in items)
        return [
            SimulationMeta(
                file=str(path), key=str(i), layout="B", n_frames=n_steps, channels=len(fields),
                height=H, width=W, fields=fields, normalized=False, channel_mean=None, channel_std=None,
                params={**params, **per_traj[i]},
            )
            for i in range(n_traj)
        ]


def _scalar_params(f: h5py.File, n_traj: int) -> list[dict[str, float]]:
    out: list[dict[str, float]] = [{} for _ in range(n_traj)]
    if "scalars" not in f:
        return out
    for name, ds in f["scalars"].items():
        if _flag(ds, "time_varying", False):
            continue
        values = np.asarray(ds[()], dtype=float).ravel()
        for i in range(n_traj):
            out[i][name] = float(values[i] if _flag(ds, "sample_varying", False) and values.size > i else values[0])
    return out


def read_frames(meta: SimulationMeta, start: int, stop: int) -> np.ndarray:
    traj = int(meta.key)
    out = np.empty((stop - start, meta.channels, meta.height, meta.width), dtype=np.float32)
    with h5reader(meta.file) as f:
        for c, (path, _, comp) in enumerate(_field_items(f)):
            ds = f[path]
            index: tuple = ()
            if _flag(ds, "sample_varying"):
                index += (traj,)
            if _flag(ds, "time_varying"):
                index += (slice(start, stop),)
            block = np.asarray(ds[index], dtype=np.float32)
            if comp is not None:
                block = block[..., comp]
            out[:, c] = block if _flag(ds, "time_varying") else block[None]
    return out


def split_files(root: Path, split: str) -> list[Path]:
    """The Well keeps `<root>/<split>/*.hdf5` (also accept .h5 and a single `<root>/<split>.hdf5`)."""
    d = root / split
    if d.is_dir():
        return sorted(p for p in d.iterdir() if p.suffix in (".hdf5", ".h5"))
    single = root / f"{split}.hdf5"
    return [single] if single.is_file() else []
