"""Tiny layout-A and layout-B files for tests: fast, deterministic, and breakable on purpose."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rs.data.layout_a import Group, write_file


def frames(T: int, H: int, W: int, seed: int = 0) -> np.ndarray:
    """A front moving along +x with a wavy interface: φ and c as float32 (T, 2, H, W)."""
    rng = np.random.default_rng(seed)
    x = np.arange(W)[None, None, :]
    y = np.arange(H)[None, :, None]
    t = np.arange(T)[:, None, None]
    front = W / 4 + 0.3 * t + 1.5 * np.sin(2 * np.pi * y / H + rng.uniform(0, 2 * np.pi))
    phi = -np.tanh((x - front) / 1.4)
    c = 1.0 + 2.0 * np.exp(-np.clip(x - front, 0, None) / 6.0) * (phi < 0.5) + 0.1 * (phi + 1)
    return np.stack([phi, c], axis=1).astype(np.float32)


def write_layout_a(
    path: Path,
    n_sims: int = 2,
    T: int = 6,
    H: int = 16,
    W: int = 16,
    *,
    normalized: bool = False,
    seed: int = 0,
    shapes: list[tuple[int, int]] | None = None,
) -> Path:
    """`n_sims` simulations (optionally of different H×W); images physical or already z-scored."""
    groups = []
    all_frames = []
    for i in range(n_sims):
        h, w = shapes[i] if shapes else (H, W)
        img = frames(T, h, w, seed + i)
        all_frames.append(img)
        groups.append(Group(
            f"sim_{i + 1:04d}",
            {"images": img, "times": np.arange(T), "time_phys": np.arange(T) * 1e-4},
            {"pulling_speed": 1e-4 * (i + 1), "thermal_gradient_raw": 1e6, "dx": 2e-7, "x0_dx": w / 4,
             "norm_type_images": "none"},
        ))
    cat = np.concatenate([f.transpose(1, 0, 2, 3).reshape(2, -1) for f in all_frames], axis=1)
    mean, std = cat.mean(axis=1), cat.std(axis=1)
    if normalized:
        for g in groups:
            z = (g.datasets["images"] - mean[None, :, None, None]) / std[None, :, None, None]
            g.datasets["images"] = z.astype(np.float32)
            g.attrs["norm_type_images"] = "zscore"
    root = {"fields": ["phi", "c"], "normalization_schema": "zscore", "channel_mean": mean, "channel_std": std}
    write_file(path, groups, root)
    return path


def write_layout_b(path: Path, n_traj: int = 2, T: int = 6, H: int = 16, W: int = 12, seed: int = 0) -> Path:
    """The Well's layout: t0 fields φ and c, a vector t1 field, scalars and dimensions."""
    rng = np.random.default_rng(seed)
    data = np.stack([frames(T, H, W, seed + i) for i in range(n_traj)])  # (B, T, 2, H, W)
    with h5py.File(path, "w") as f:
        f.attrs.update({"dataset_name": "rs_dummy", "grid_type": "cartesian", "n_spatial_dims": 2,
                        "n_trajectories": n_traj, "V": 1e-4})
        f.attrs["simulation_parameters"] = ["V"]
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for key, n in (("time", T), ("x", H), ("y", W)):
            dims.create_dataset(key, data=np.linspace(0, 1, n, dtype=np.float32))
            dims[key].attrs["sample_varying"] = False
        bc = f.create_group("boundary_conditions/x_wall")
        bc.attrs.update({"associated_dims": ["x"], "bc_type": "WALL", "sample_varying": False, "time_varying": False})
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = ["G"]
        sc.create_dataset("G", data=np.linspace(1e6, 2e6, n_traj)).attrs.update(
            {"sample_varying": True, "time_varying": False})
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["phi", "c"]
        for c, name in enumerate(("phi", "c")):
            ds = t0.create_dataset(name, data=data[:, :, c])
            ds.attrs.update({"dim_varying": [True, True], "sample_varying": True, "time_varying": True})
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["flow"]
        ds = t1.create_dataset("flow", data=rng.normal(size=(n_traj, T, H, W, 2)).astype(np.float32))
        ds.attrs.update({"dim_varying": [True, True], "sample_varying": True, "time_varying": True})
        f.create_group("t2_fields").attrs["field_names"] = []
    return path


def lab_fields(t: np.ndarray, x_lab: np.ndarray, H: int, speed: float, seed: int = 0) -> np.ndarray:
    """φ and c of a wavy front moving along +x at `speed` cells/frame, at lab positions `x_lab` (cells):
    (len(t), 2, H, W) for x_lab (len(t), W)."""
    rng = np.random.default_rng(seed)
    y = np.arange(H)[None, :, None]
    front = 8.0 + speed * np.asarray(t, float)[:, None, None] + 1.5 * np.sin(2 * np.pi * y / H + rng.uniform(0, 6))
    x = np.asarray(x_lab, float)[:, None, :]
    phi = -np.tanh((x - front) / 1.4)
    c = 1.0 + 2.0 * np.exp(-np.clip(x - front, 0, None) / 6.0) * (phi < 0.5) + 0.1 * (phi + 1)
    return np.stack([phi, c], axis=1).astype(np.float32)


def write_moving_window(path: Path, n_sims: int = 2, T: int = 12, H: int = 8, W: int = 24, speed: float = 1.3,
                        target: int = 10) -> Path:
    """Layout-A simulations stored in a moving window the way the generator stores them: after each frame the
    window jumps ahead by whole cells when the mean front has passed column `target` (`window_offset`, by the
    generator's rule; `window_target` names the column)."""
    from rs.data import window

    groups = []
    x_W = np.arange(W)[None, :]
    for i in range(n_sims):
        t, v = np.arange(T), speed + 0.2 * i
        off = np.zeros(T, np.int64)
        for k in range(1, T):  # the new frame's field in the previous window decides the jump
            off[k] = off[k - 1] + window.rule_shift(lab_fields(t[k : k + 1], x_W + off[k - 1], H, v, i)[0, 0], target)
        img = lab_fields(t, x_W + off[:, None], H, v, seed=i)
        groups.append(Group(f"sim_{i + 1:04d}", {"images": img, "window_offset": off,
                                                   "time_phys_norm": (t / (T - 1)).astype(np.float32)},
                            {"pulling_speed": 1e-4 * (i + 1), "thermal_gradient_raw": 1e6, "dx": 2e-7,
                             "window_target": target / W}))
    write_file(path, groups, {"fields": ["phi", "c"]})
    return path
