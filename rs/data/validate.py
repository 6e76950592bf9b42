"""`rs data validate`: structure, dtypes, ranks, finiteness, monotone times and consistent shapes.

Every problem is one `FILE:/group/dataset: reason` line; frames are checked one at a time so a file
of any size validates in bounded memory.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rs.data import layout_a, layout_b
from rs.data.meta import DataError, attr_list, h5open


def validate(path: str | Path, layout: str = "auto") -> list[str]:
    """All problems found in one file; an empty list means it is good."""
    try:
        with h5open(path) as f:
            if layout in ("auto", "A") and layout_a.is_layout_a(f):
                return _layout_a(f, str(path))
            if layout in ("auto", "B") and layout_b.is_layout_b(f):
                return _layout_b(f, str(path))
            return [f"{path}:/: neither layout A (sim_* groups) nor layout B (t0_fields + dimensions)"]
    except DataError as err:
        return [str(err)]


def _frames_finite(ds: h5py.Dataset, where: str, time_axis: int = 0) -> list[str]:
    bad = []
    for t in range(ds.shape[time_axis]):
        index = (slice(None),) * time_axis + (t,)
        if not np.isfinite(ds[index]).all():
            bad.append(t)
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
        return [f"{where}: non-finite values (NaN/Inf) in {len(bad)} frame(s): {shown}"]
    return []


def _layout_a(f: h5py.File, path: str) -> list[str]:
    problems: list[str] = []
    fields = attr_list(f.attrs.get("fields"))
    sims = sorted(k for k in f if k.startswith("sim_"))
    for key in sims:
        grp = f[key]
        where = f"{path}:/{key}"
        if "images" not in grp:
            problems.append(f"{where}/images: missing; layout A needs images (T, C, H, W)")
            continue
        ds = grp["images"]
        if ds.ndim != 4:
            problems.append(f"{where}/images: rank {ds.ndim}, expected 4 (T, C, H, W)")
            continue
        T, C, H, W = ds.shape
        if not np.issubdtype(ds.dtype, np.floating):
            problems.append(f"{where}/images: dtype {ds.dtype}, expected a float type")
        if T == 0:
            problems.append(f"{where}/images: zero frames")
        if fields and len(fields) != C:
            problems.append(f"{path}:/@fields: {len(fields)} names {fields} but {where}/images has {C} channels")
        if T and np.issubdtype(ds.dtype, np.floating):
            problems += _frames_finite(ds, f"{where}/images")
        for name in ("times", "time_phys"):
            if name in grp:
                t = np.asarray(grp[name][()])
                if t.shape != (T,):
                    problems.append(f"{where}/{name}: shape {t.shape}, expected ({T},) like images")
                elif T > 1 and not np.all(np.diff(t) > 0):
                    i = int(np.argmax(np.diff(t) <= 0))
                    problems.append(f"{where}/{name}: not strictly increasing (index {i + 1}: {t[i]} -> {t[i + 1]})")
        if "thermal_field" in grp:
            th = grp["thermal_field"]
            if th.ndim != 4 or th.shape[0] != T or th.shape[2:] != (H, W):
                want = (T, 1, H, W)
                problems.append(f"{where}/thermal_field: shape {th.shape} disagrees with images; expected {want}")
    if not sims:
        problems.append(f"{path}:/: no sim_* groups")
    return problems


def _layout_b(f: h5py.File, path: str) -> list[str]:
    problems: list[str] = []
    if "dimensions" not in f or "time" not in f["dimensions"]:
        return [f"{path}:/dimensions/time: missing; layout B needs dimensions/{{time,x,y}}"]
    n_steps = f["dimensions/time"].shape[0]
    if n_steps > 1 and not np.all(np.diff(f["dimensions/time"][()]) > 0):
        problems.append(f"{path}:/dimensions/time: not strictly increasing")
    dims = attr_list(f["dimensions"].attrs.get("spatial_dims")) or ["x", "y"]
    spatial = tuple(f[f"dimensions/{d}"].shape[0] for d in dims if f"dimensions/{d}" in f)
    n_traj = int(f.attrs.get("n_trajectories", 1))
    for order, extra in (("t0_fields", ()), ("t1_fields", (len(dims),))):
        if order not in f:
            continue
        for name, ds in f[order].items():
            where = f"{path}:/{order}/{name}"
            expected: tuple[int, ...] = ()
            if bool(np.asarray(ds.attrs.get("sample_varying", True)).all()):
                expected += (n_traj,)
            if bool(np.asarray(ds.attrs.get("time_varying", True)).all()):
                expected += (n_steps,)
            expected += spatial + extra
            if ds.shape != expected:
                problems.append(f"{where}: shape {ds.shape}, expected {expected} from its flags and dimensions")
                continue
            axis = 1 if len(expected) > len(spatial) + len(extra) + 1 else 0
            problems += _frames_finite(ds, where, time_axis=axis)
    return problems
