"""`rs data generate`: simulate every split and write layout-A files plus a manifest, atomically."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rs
from rs.config.data_schema import GenerateConfig
from rs.data.generate import solver
from rs.data.generate.run import SPLITS, SimResult, batches, sample_specs, simulate_batch, steps_per_frame
from rs.data.layout_a import Group, write_file

ZSCORE_EPS = 1e-6


@dataclass(frozen=True)
class Summary:
    simulations: int
    frames: int
    wall_s: float
    cell_updates_per_s: float
    files: tuple[str, ...]

    def line(self) -> str:
        return (
            f"{self.simulations} simulations, {self.frames} frames in {self.wall_s:.1f} s "
            f"({self.cell_updates_per_s / 1e6:.1f} M cell-updates/s) -> {', '.join(self.files)}"
        )


def _stats(results: list[SimResult], time_phys: np.ndarray) -> dict[str, Any]:
    imgs = np.stack([r.images for r in results]).astype(np.float64)  # (N, T, C, H, W)
    mean = imgs.mean(axis=(0, 1, 3, 4))
    std = imgs.std(axis=(0, 1, 3, 4))
    g = np.array([r.spec.gradient for r in results])
    return {
        "channel_mean": mean, "channel_std": np.maximum(std, ZSCORE_EPS),
        "time_mean": float(time_phys.mean()), "time_std": float(max(time_phys.std(), ZSCORE_EPS)),
        "thermal_mean": float(g.mean()), "thermal_std": float(max(g.std(), ZSCORE_EPS)),
    }


def _generator_attrs(gen: GenerateConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in gen.model_dump().items():
        if key in ("seed", "simulations", "batch", "device", "compile"):
            continue  # per-simulation seed goes on the group; the rest are run settings
        out[key] = np.asarray(value, dtype=float) if isinstance(value, tuple) else value
    return out


def _group(gen: GenerateConfig, r: SimResult, stats: dict[str, Any], time_phys: np.ndarray) -> Group:
    assert gen.interface_width and gen.tau0
    dx = gen.dx_over_w0 * gen.interface_width
    H, W = gen.grid
    attrs = {
        "norm_type_images": "none",
        "channel_mean": stats["channel_mean"], "channel_std": stats["channel_std"],
        "effective_dt": float(time_phys[1] - time_phys[0]) if time_phys.size > 1 else 0.0,
        "dx": dx, "physical_grid_spacing": dx, "W0": gen.interface_width, "tau0": gen.tau0,
        "x0_dx": gen.front_position * W, "x_min": 0.0, "x_max": W * dx, "y_min": 0.0, "y_max": H * dx,
        "T0": 0.0, "seed": r.spec.seed, "split": r.spec.split,
        **r.attrs, **_generator_attrs(gen),
    }
    T = r.images.shape[0]
    datasets = {
        "images": r.images,
        "times": r.steps,
        "time_phys": time_phys,
        "time_phys_norm": (time_phys - stats["time_mean"]) / stats["time_std"],
        "window_offset": r.window_offset,
        "thermal_gradient_series": np.full(T, r.spec.gradient),
        "thermal_gradient_series_norm": np.full(T, (r.spec.gradient - stats["thermal_mean"]) / stats["thermal_std"]),
    }
    return Group(r.spec.name, datasets, attrs)


def generate(
    gen: GenerateConfig, out: Path, fields: list[str], on_frame: Callable[[int], None] | None = None
) -> Summary:
    """Simulate train, val and test; channel statistics come from the train split only."""
    if list(fields) != ["phi", "c"]:
        raise ValueError(f"the generator writes fields ['phi', 'c'], config asks for {fields}")
    assert gen.dt is not None and gen.tau0 is not None
    t0 = time.perf_counter()
    specs = sample_specs(gen)
    time_phys = np.arange(gen.frames) * steps_per_frame(gen) * gen.dt * gen.tau0
    stats: dict[str, Any] = {}
    files = []
    manifest: dict[str, Any] = {
        "rs_version": rs.__version__, "generate": gen.model_dump(mode="json"), "simulations": []
    }
    # Splits share batches: the solver is fastest with many simulations advancing together.
    step_fn = solver.compiled_step() if gen.compile else solver.step
    everything = [r for b in batches(specs, gen.batch) for r in simulate_batch(gen, b, on_frame, step_fn)]
    for split in SPLITS:
        results = [r for r in everything if r.spec.split == split]
        if split == "train":
            stats = _stats(results, time_phys)
        if not results:
            continue
        root_attrs = {
            "fields": ["phi", "c"], "normalization_schema": "zscore", "split": split,
            "channel_mean": stats["channel_mean"], "channel_std": stats["channel_std"],
            "time_mean": stats["time_mean"], "time_std": stats["time_std"],
            "thermal_mean": stats["thermal_mean"], "thermal_std": stats["thermal_std"],
            "thermal_field_enabled": False, "thermal_field_axis": "x", "thermal_field_T0": 0.0,
            "thermal_field_t0": 0.0, "thermal_field_norm": "none", "tau0": gen.tau0,
            "zscore_eps_images": ZSCORE_EPS, "generator": f"rs {rs.__version__}",
        }
        path = out / f"{split}.h5"
        write_file(path, [_group(gen, r, stats, time_phys) for r in results], root_attrs)
        files.append(str(path))
        manifest["simulations"] += [
            {"name": r.spec.name, "split": split, "file": path.name, "seed": r.spec.seed, **r.attrs} for r in results
        ]
    manifest["channel_mean"] = [float(v) for v in stats["channel_mean"]]
    manifest["channel_std"] = [float(v) for v in stats["channel_std"]]
    _write_json(out / "manifest.json", manifest)
    wall = time.perf_counter() - t0
    H, W = gen.grid
    updates = len(specs) * (gen.frames - 1) * steps_per_frame(gen) * H * W
    return Summary(len(specs), len(specs) * gen.frames, wall, updates / wall, tuple(files))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
