"""`rs bench train`: plain torch vs Ray Train on one device, with the GPU settings (bf16 autocast,
channels-last) exercised on the CPU, and model FLOP utilization."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rs.bench.train import peak_tflops

REPO = Path(__file__).resolve().parents[1]
RS = [sys.executable, "-m", "rs"]


@pytest.mark.parametrize("name,peak", [("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0),
                                       ("NVIDIA A100-SXM4-40GB", 312.0), ("AMD Instinct MI250X", 191.5),
                                       ("Tesla V100-SXM2-32GB", 125.0), ("cpu", None)])
def test_peak_tflops_by_device_name(name, peak):
    assert peak_tflops(name) == peak


def test_bench_train_runs_the_gpu_settings_on_cpu_and_counts_flops(data_root, tmp_path):
    """bf16 autocast and channels-last through both sides (plain torch, Ray Train with 2 workers, in-process);
    the FLOPs per sample cover forward and backward (2–3.5× the forward alone)."""
    from rs.config import load_config
    from rs.models.build import build_model
    from rs.models.summary import forward_flops

    sets = [f"data.root={data_root}", "train.channels_last=true", "train.precision=bf16",
            "train.max_steps_per_epoch=3"]
    proc = subprocess.run([*RS, "bench", "train", "--json", "--epochs", "1", "--steps", "12", "--peak-tflops", "1",
                           *[a for s in sets for a in ("--set", s)]], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["device_name"] == "cpu" and r["workers"] == 2 and "train.channels_last=true" in r["overrides"]
    assert r["local_samples_per_s"] > 0 and r["ray_samples_per_s"] > 0 and r["throughput_ratio"] > 0
    assert 0 < r["first_step_s_local"] < r["first_step_s"] and r["first_step_s_inprocess"] > 0
    assert r["mfu_local"] == pytest.approx(r["gflops_per_sample"] * r["local_samples_per_s"] / 1e3)
    assert r["repeats"] == 1 and r["first_step_s_runs"] == [r["first_step_s"]]
    cfg = load_config(REPO / "configs/train/debug.yaml", [f"data.root={data_root}"], env={})
    m = cfg.model
    fwd = forward_flops(build_model(cfg).net, (1, m.in_channels, 32, 32), m.cond_dim) / 1e9
    assert 2.0 < r["gflops_per_sample"] / fwd < 3.5


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the gpu-marked test runs instead")
def test_bench_train_on_cuda_without_a_gpu_says_so():
    proc = subprocess.run([*RS, "bench", "train", "--device", "cuda"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and "torch sees no GPU here" in proc.stderr


@pytest.mark.gpu
def test_bench_train_on_cuda_reports_flop_utilization(data_root, tmp_path):
    proc = subprocess.run([*RS, "bench", "train", "--device", "cuda", "--json", "--epochs", "1", "--steps", "30",
                           "--set", f"data.root={data_root}", "--set", "train.max_steps_per_epoch=20"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["device_name"] != "cpu" and r["throughput_ratio"] > 0
    if r["peak_tflops"]:
        assert 0 < r["mfu_local"] < 1


def test_repeated_bench_reports_medians_and_every_run(data_root, monkeypatch):
    from rs.bench import train as bench

    runs = iter([{"first_step_s": v, "first_step_s_inprocess": v / 2, "first_step_s_local": 1.0,
                  "throughput_ratio": r, "device_name": "cpu", "mfu_local": None}
                 for v, r in ((17.0, 0.9), (14.0, 1.1), (15.0, 1.0))])
    monkeypatch.setattr(bench, "_once", lambda *a: next(runs))
    r = bench.run(REPO / "configs/train/debug.yaml", [f"data.root={data_root}"], repeats=3)
    assert r["first_step_s"] == 15.0 and r["first_step_s_inprocess"] == 7.5 and r["throughput_ratio"] == 1.0
    assert r["first_step_s_runs"] == [17.0, 14.0, 15.0] and r["device_name"] == "cpu" and r["mfu_local"] is None
