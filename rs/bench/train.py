"""`rs bench train`: a plain single-process torch loop vs Ray Train (2 workers) on the same data and model,
in one run: steady-state samples/s ratio and time from start to the first optimizer step of each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _local(config: Path, overrides: list[str], steps: int, t_start: float) -> dict[str, float]:
    """The way a single-process script trains: samples in memory, one model, one optimizer."""
    import numpy as np
    import torch

    from rs.config import load_config
    from rs.data import layouts
    from rs.data.normalize import compute_stats, delta_std
    from rs.data.samples import SampleSpec, build_index, read_chunk
    from rs.data.source import Batch
    from rs.models.build import build_model, set_delta_scale
    from rs.train.families import FAMILIES
    from rs.train.optim import build_optimizer

    cfg = load_config(config, overrides)
    d = cfg.data
    train = layouts.open_split(d.root, "train", d.layout)
    stats = compute_stats(train, list(d.fields), list(d.cond_params))
    spec = SampleSpec.from_config(d)
    parts = [read_chunk(c, spec, stats, None) for c in build_index(train, spec, d.read_block_frames)]
    x = torch.from_numpy(np.concatenate([p["input"] for p in parts]))
    y = torch.from_numpy(np.concatenate([p["target"] for p in parts]))
    c = torch.from_numpy(np.concatenate([p["cond"] for p in parts]))
    family = FAMILIES[cfg.train.model_family](cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    set_delta_scale(model, delta_std(train, stats, d.stride, align=d.align_window))
    opt = build_optimizer(cfg.train, model)
    bs = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    first = None
    t_steady = 0.0
    done = 0
    for step in range(steps):
        i = (step * bs) % max(len(x) - bs, 1)
        batch = Batch(x[i : i + bs], y[i : i + bs], c[i : i + bs], {})
        loss, _ = family.loss(model, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if first is None:
            first = time.time() - t_start
        if step == 4:  # steady state starts after a few steps of allocator and thread warm-up
            t_steady = time.perf_counter()
        elif step > 4:
            done += bs
    return {"samples_per_s": done / (time.perf_counter() - t_steady), "first_step_s": float(first or 0.0)}


def run(config: Path, overrides: list[str], epochs: int = 3, steps: int = 60) -> dict[str, Any]:
    from rs.bench.common import machine

    out: dict[str, Any] = {"machine": machine(), "config": str(config), "overrides": overrides}
    # Each side starts a fresh Python process so time-to-first-step counts imports as a user would.
    local = _subprocess(["local", str(config), json.dumps(overrides), str(steps)])
    runs = Path(f"/tmp/rs-bench-train-{os.getpid()}")
    ray_args = [*overrides, f"train.storage_path={runs}", f"train.epochs={epochs}", "train.run_name=bench"]
    ray = _subprocess(["ray", str(config), json.dumps(ray_args), "0"])
    inproc_args = [*ray_args[:-1], "train.run_name=bench-inprocess", "train.num_workers=0", "train.epochs=1"]
    inproc = _subprocess(["ray", str(config), json.dumps(inproc_args), "0"])
    out.update({
        "local_samples_per_s": local["samples_per_s"], "first_step_s_local": local["first_step_s"],
        "ray_samples_per_s": ray["steady_samples_per_s"], "ray_epoch_samples_per_s": ray["samples_per_s"],
        "ray_first_batch_s": ray["first_batch_s"], "first_step_s": ray["first_step_s"],
        "first_step_s_inprocess": inproc["first_step_s"],
        "throughput_ratio": ray["steady_samples_per_s"] / local["samples_per_s"],
        "epoch_throughput_ratio": ray["samples_per_s"] / local["samples_per_s"],
    })
    return out


def _subprocess(args: list[str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "rs.bench.train", *args], capture_output=True, text=True,
                          cwd=REPO, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    if proc.returncode != 0:
        raise RuntimeError(f"bench side {args[0]} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ray_side(config: Path, overrides: list[str], t_start: float) -> dict[str, float]:
    from rs.train.api import fit
    from rs.train.checkpoint import META

    result = fit(config, overrides, start_time=t_start)
    dirs = [d for d in result.run_dir.glob("checkpoint_*") if (d / META).is_file()]
    metas = sorted((json.loads((d / META).read_text()) for d in dirs), key=lambda m: m["epoch"])
    first = next(m["metrics"]["first_step_s"] for m in metas if "first_step_s" in m["metrics"])
    last = metas[-1]["metrics"]  # the last epoch: worker processes and read workers are warm
    return {"samples_per_s": last["samples_per_s"], "steady_samples_per_s": last["steady_samples_per_s"],
            "first_batch_s": last["first_batch_s"], "first_step_s": first}


def table(r: dict[str, Any]) -> str:
    return "\n".join([
        f"train bench: {r['config']} {' '.join(r['overrides'])}; {r['machine']}",
        f"{'':<34} {'steady smp/s':>12} {'epoch smp/s':>11} {'first step (s)':>15}",
        f"{'plain torch, 1 process':<34} {r['local_samples_per_s']:>12.1f} {'':>11} {r['first_step_s_local']:>15.1f}",
        f"{'Ray Train, 2 workers':<34} {r['ray_samples_per_s']:>12.1f} {r['ray_epoch_samples_per_s']:>11.1f} "
        f"{r['first_step_s']:>15.1f}",
        f"{'rs train, num_workers: 0':<34} {'':>12} {'':>11} {r['first_step_s_inprocess']:>15.1f}",
        f"throughput_ratio (Ray steady / plain): {r['throughput_ratio']:.2f}; per whole epoch "
        f"{r['epoch_throughput_ratio']:.2f} (each epoch's first batch came after {r['ray_first_batch_s']:.2f} s)",
    ])


if __name__ == "__main__":
    start = time.time()
    side, cfg_path, extra, n = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
    result = _local(cfg_path, extra, n, start) if side == "local" else _ray_side(cfg_path, extra, start)
    print(json.dumps(result))
