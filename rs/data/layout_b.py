"""Layout B (The Well's): `t0_fields/<name>` (n_traj, n_steps, x, y), `t1_fields/<name>` (…, D), with
`sample_varying` / `time_varying` flags; one trajectory is one simulation. Spatial dims map to (H, W)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from rs.data.meta import DataError, SimulationMeta, attr_list, file_key, h5open, h5reader


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


STATS_FILE = "stats.yaml"
_WITH_STATS: dict[tuple, list[SimulationMeta]] = {}


def stats_file(path: str | Path) -> Path | None:
    """The Well keeps per-field means/stds over train in `<dataset>/stats.yaml`, beside `data/<split>/`; a root
    holding the split folders directly may keep it beside them."""
    split_dir = Path(path).resolve().parent
    candidates = [split_dir.parent / STATS_FILE]
    if split_dir.parent.name == "data":
        candidates.append(split_dir.parent.parent / STATS_FILE)
    return next((p for p in candidates if p.is_file()), None)


def _load_stats(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); fix it or remove it to compute "
                        "statistics from the train split") from None
    if not isinstance(loaded, dict) or not all(isinstance(loaded.get(k), dict) for k in ("mean", "std")):
        raise DataError(f"{path}: expected The Well's stats.yaml (mappings `mean` and `std` of field name to "
                        "value); fix it or remove it to compute statistics from the train split")
    return loaded


def _channel_value(stats: dict[str, Any], which: str, field: str, comp: int | None, where: Path) -> float:
    if field not in stats[which]:
        raise DataError(f"{where}: no {which} for field {field!r}; add it, or remove {STATS_FILE} to compute "
                        "statistics from the train split")
    value = np.asarray(stats[which][field], dtype=float)
    if comp is None and value.ndim == 0:
        return float(value)
    if comp is not None and value.ndim == 1 and comp < value.size:
        return float(value[comp])
    want = "one number" if comp is None else f"a list with component {comp}"
    raise DataError(f"{where}: {which}[{field!r}] is {value.tolist()!r}, expected {want}")


def with_well_stats(metas: list[SimulationMeta], path: str | Path) -> list[SimulationMeta]:
    """Layout B simulations carrying the dataset's stats.yaml means/stds per channel (vector components by
    index), which normalization then uses instead of a streaming pass over train; unchanged without one.
    Remembered per version of both files: every split, epoch and process asks."""
    if not metas or metas[0].layout != "B" or (where := stats_file(path)) is None:
        return metas
    key = (file_key(path), file_key(where))
    if key not in _WITH_STATS:
        stats = _load_stats(where)
        with h5open(path) as f:
            items = _field_items(f)
        mean = tuple(_channel_value(stats, "mean", p.split("/", 1)[1], comp, where) for p, _, comp in items)
        std = tuple(_channel_value(stats, "std", p.split("/", 1)[1], comp, where) for p, _, comp in items)
        _WITH_STATS[key] = [dataclasses.replace(m, channel_mean=mean, channel_std=std) for m in metas]
    return list(_WITH_STATS[key])
