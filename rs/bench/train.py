"""`rs bench train`: a plain single-process torch loop vs Ray Train (2 workers) on the same data and model,
in one run: steady-state samples/s ratio and time from start to the first optimizer step of each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rs.bench.common import print_result, read_result

REPO = Path(__file__).resolve().parents[2]


def _local(config: Path, overrides: list[str], steps: int, t_start: float) -> dict[str, float]:
    """The way a single-process script trains: samples in memory (on the device), one model, one optimizer;
    the same device, precision, memory format and compilation as the config gives Ray Train."""
    import numpy as np
    import torch

    from rs.config import load_config
    from rs.data import layouts
    from rs.data.normalize import compute_stats, delta_std
    from rs.data.samples import SampleSpec, build_index, read_chunk
    from rs.data.source import Batch
    from rs.models.build import build_model, set_delta_scale
    from rs.train.device import place
    from rs.train.families import FAMILIES
    from rs.train.optim import build_optimizer

    cfg = load_config(config, overrides)
    d, t = cfg.data, cfg.train
    device = torch.device("cuda" if t.use_gpu else "cpu")
    train = layouts.open_split(d.root, "train", d.layout)
    stats = compute_stats(train, list(d.fields), list(d.cond_params))
    spec = SampleSpec.from_config(d)
    parts = [read_chunk(c, spec, stats, None) for c in build_index(train, spec, d.read_block_frames)]
    x, y, c = (torch.from_numpy(np.concatenate([p[k] for p in parts])) for k in ("input", "target", "cond"))
    family = FAMILIES[t.model_family](cfg)
    torch.manual_seed(t.seed)
    model = place(build_model(cfg), device, t.channels_last)
    set_delta_scale(model, delta_std(train, stats, d.stride, align=d.align_window))
    opt = build_optimizer(t, model)
    bs = t.batch_size
    batches = [Batch(x[i : i + bs], y[i : i + bs], c[i : i + bs], {}).to(device, t.channels_last)
               for i in range(0, max(len(x) - bs, 1), bs)]
    flops = step_flops(family, model, batches[0]) / len(batches[0])
    net = torch.compile(model) if t.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
    gen = torch.Generator().manual_seed(0)
    first = None
    t_steady = 0.0
    done = 0
    for step in range(steps):
        batch = batches[step % len(batches)]
        with autocast:
            loss, _ = family.loss(net, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if first is None:
            float(loss)  # waits for the device
            first = time.time() - t_start
        if step == 4:  # steady state starts after a few steps of allocator and thread warm-up
            _sync(device)
            t_steady = time.perf_counter()
        elif step > 4:
            done += bs
    _sync(device)
    return {"samples_per_s": done / (time.perf_counter() - t_steady), "first_step_s": float(first or 0.0),
            "flops_per_sample": flops, "device_name": _device_name(device)}


def step_flops(family: Any, model: Any, batch: Any) -> float:
    """FLOPs of one optimizer step's forward and backward on `batch`, as torch counts them (uncompiled)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss, _ = family.loss(model, batch, torch.Generator().manual_seed(0))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 tensor-core peak of known accelerators (vendor datasheets), None when unknown."""
    name = device_name.upper()
    for key, value in PEAK_BF16_TFLOPS:
        if all(part in name for part in key.split("+")):
            return value
    return None


# First match wins: more specific names first. AMD's MI250X is two devices (GCDs); torch sees one.
PEAK_BF16_TFLOPS = [("H100+PCIE", 756.0), ("H100+NVL", 835.0), ("H100", 989.4), ("H200", 989.4),
                    ("GH200", 989.4), ("A100", 312.0), ("L40S", 362.1), ("A40", 149.7), ("L4", 121.0),
                    ("V100", 125.0), ("MI300X", 1307.4), ("MI250X", 191.5), ("MI250", 181.0), ("MI210", 181.0)]


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: Any) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


DEVICE_DEFAULTS = {"cuda": ["train.use_gpu=true", "train.precision=bf16", "train.channels_last=true",
                            "train.compile=true"], "cpu": []}


def run(config: Path, overrides: list[str], epochs: int = 3, steps: int = 60, device: str = "cpu",
        peak: float | None = None, repeats: int = 1) -> dict[str, Any]:
    """The comparison `repeats` times in a row; the headline numbers are medians (start-up times vary by about
    a second between runs here), the per-run values are kept beside them."""
    from rs.bench.common import ensure_data, machine
    from rs.config import load_config

    overrides = [*DEVICE_DEFAULTS[device], *overrides]  # the user's --set wins
    cfg = load_config(config, overrides)
    out: dict[str, Any] = {"machine": machine(), "config": str(config), "overrides": overrides, "device": device,
                           "workers": cfg.train.num_workers, "repeats": repeats,
                           "generate_s": round(ensure_data(config, cfg.data.root, overrides), 1)}
    each = [_once(config, overrides, epochs, steps, peak) for _ in range(repeats)]
    out.update({k: float(np.median([r[k] for r in each])) if isinstance(v, (int, float))
                else v for k, v in each[0].items()})
    for key in ("first_step_s", "first_step_s_inprocess", "first_step_s_local", "throughput_ratio"):
        out[f"{key}_runs"] = [r[key] for r in each]
    return out


def _once(config: Path, overrides: list[str], epochs: int, steps: int, peak: float | None) -> dict[str, Any]:
    # Each side starts a fresh Python process so time-to-first-step counts imports as a user would.
    local = _subprocess(["local", str(config), json.dumps(overrides), str(steps)])
    runs = Path(f"/tmp/rs-bench-train-{os.getpid()}")
    ray_args = [*overrides, f"train.storage_path={runs}", f"train.epochs={epochs}", "train.run_name=bench"]
    try:
        ray = _subprocess(["ray", str(config), json.dumps(ray_args), "0"])
        inproc_args = [*ray_args[:-1], "train.run_name=bench-inprocess", "train.num_workers=0", "train.epochs=1"]
        inproc = _subprocess(["ray", str(config), json.dumps(inproc_args), "0"])
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    peak = peak or peak_tflops(local["device_name"])
    flops = local["flops_per_sample"]
    return {
        "device_name": local["device_name"], "gflops_per_sample": flops / 1e9, "peak_tflops": peak,
        "local_samples_per_s": local["samples_per_s"], "first_step_s_local": local["first_step_s"],
        "ray_samples_per_s": ray["steady_samples_per_s"], "ray_epoch_samples_per_s": ray["samples_per_s"],
        "ray_first_batch_s": ray["first_batch_s"], "first_step_s": ray["first_step_s"],
        "first_step_s_inprocess": inproc["first_step_s"],
        "throughput_ratio": ray["steady_samples_per_s"] / local["samples_per_s"],
        "epoch_throughput_ratio": ray["samples_per_s"] / local["samples_per_s"],
        # Model FLOP utilization: useful FLOPs per second over the device's peak (PaLM, Chowdhery et al. 2022).
        "mfu_local": None if not peak else flops * local["samples_per_s"] / (peak * 1e12),
        "mfu_ray": None if not peak else flops * ray["steady_samples_per_s"] / (peak * 1e12),
    }


def _subprocess(args: list[str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "rs.bench.train", *args], capture_output=True, text=True,
                          cwd=REPO, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    if proc.returncode != 0:
        raise RuntimeError(f"bench side {args[0]} failed: {proc.stderr[-1500:]}")
    return read_result(proc.stdout)


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
    mfu = "" if r.get("mfu_local") is None else (
        f"\nmodel FLOP utilization ({r['gflops_per_sample']:.2f} GFLOP per sample forward + backward, peak "
        f"{r['peak_tflops']:g} TFLOP/s bf16): plain {r['mfu_local']:.1%}, Ray Train {r['mfu_ray']:.1%}")
    ray_row = f"Ray Train, {r['workers']} worker(s)"
    runs = "" if r.get("repeats", 1) == 1 else (
        f"\nmedians of {r['repeats']} runs; first step per run: Ray "
        f"{', '.join(f'{v:.1f}' for v in r['first_step_s_runs'])} s, in-process "
        f"{', '.join(f'{v:.1f}' for v in r['first_step_s_inprocess_runs'])} s; ratio "
        f"{', '.join(f'{v:.2f}' for v in r['throughput_ratio_runs'])}")
    return "\n".join([
        f"train bench: {r['config']} {' '.join(r['overrides'])}; {r['machine']}; device {r['device_name']}",
        f"{'':<34} {'steady smp/s':>12} {'epoch smp/s':>11} {'first step (s)':>15}",
        f"{'plain torch, 1 process':<34} {r['local_samples_per_s']:>12.1f} {'':>11} {r['first_step_s_local']:>15.1f}",
        f"{ray_row:<34} {r['ray_samples_per_s']:>12.1f} {r['ray_epoch_samples_per_s']:>11.1f} "
        f"{r['first_step_s']:>15.1f}",
        f"{'rs train, num_workers: 0':<34} {'':>12} {'':>11} {r['first_step_s_inprocess']:>15.1f}",
        f"throughput_ratio (Ray steady / plain): {r['throughput_ratio']:.2f}; per whole epoch "
        f"{r['epoch_throughput_ratio']:.2f} (each epoch's first batch came after {r['ray_first_batch_s']:.2f} s)"
        + mfu + runs,
    ])


if __name__ == "__main__":
    start = time.time()
    from rs.cluster.startup import pause_gc_during_imports

    pause_gc_during_imports()  # as `rs train` does
    side, cfg_path, extra, n = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
    result = _local(cfg_path, extra, n, start) if side == "local" else _ray_side(cfg_path, extra, start)
    print_result(result)
