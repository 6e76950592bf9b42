"""`rs bench scaling`: FLOPs per sample counted by torch's flop counter (past 128² scaled by pixels, which
the counts at 64² and 128² check), and the plan's numbers following from their formulas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs.bench import scaling
from rs.bench.common import default_config

REPO = Path(__file__).resolve().parents[1]


def test_flops_scale_with_pixels_and_match_a_direct_count():
    config = default_config("configs/train/debug.yaml")
    direct = scaling.model_cost(config, [], 128)
    scaled = scaling.model_cost(config, [], 256)
    assert scaled["flops_per_sample"] == pytest.approx(4 * direct["flops_per_sample"], rel=0.01)
    assert scaled["params"] == direct["params"] > 0 and scaled["grad_bytes"] == 4 * scaled["params"]
    wide = scaling.model_cost(config, ["model.width=32"], 128)  # debug's UNet is 16 wide: ~4× the FLOPs
    assert 3 < wide["flops_per_sample"] / direct["flops_per_sample"] < 5


def test_plan_follows_its_formulas():
    cost = {"params": 1e6, "grad_bytes": 4e6, "flops_per_sample": 1e11, "sample_bytes": 4 * 2**20}
    node = scaling.NodeSpec(gpus=4, cores=32, peak_tflops=100, mfu=0.5, intra_gbs=100, inter_gbs=10,
                            batch_per_gpu=10)
    one, two = scaling.plan(cost, node, read_ms=10, consumer_ms=2, nodes=(1, 2))
    assert one["samples_per_s_per_gpu"] == pytest.approx(0.5 * 100e12 / 1e11)  # 500
    assert one["read_cores_per_gpu"] == pytest.approx(5.0) and one["consumer_cores_per_gpu"] == pytest.approx(1.0)
    assert one["compute_step_s"] == pytest.approx(10 / 500)
    assert one["data_step_s"] == pytest.approx(10 * 0.010 / (8 - 1))
    assert one["allreduce_bytes_per_gpu"] == pytest.approx(2 * 3 / 4 * 4e6)
    assert one["allreduce_s"] == pytest.approx(6e6 / 100e9) and two["allreduce_s"] == pytest.approx(7e6 / 10e9)
    assert one["binds"] == "compute"
    starved = scaling.plan(cost, scaling.NodeSpec(gpus=4, cores=8, peak_tflops=100, mfu=0.5), 10, 2, nodes=(1,))
    assert starved[0]["binds"] == "data"  # 2 cores a GPU, the consumer taking 1: reads bind


def test_cli_reads_a_data_bench_result(tmp_path):
    data = {"sizes": [{"compression": "none", "read_cpu_ms_per_sample": 1.0, "consumer_cpu_ms_per_sample": 1.0,
                       "compression_ratio": 1.0},
                      {"compression": "gzip", "read_cpu_ms_per_sample": 12.5, "consumer_cpu_ms_per_sample": 3.0,
                       "compression_ratio": 2.0}]}
    (tmp_path / "data.json").write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "rs", "bench", "scaling", "--config", "configs/train/debug.yaml",
                           "--grid", "256", "--data-json", str(tmp_path / "data.json"), "--json"],
                          capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert (r["read_cpu_ms_per_sample"], r["consumer_cpu_ms_per_sample"], r["compression_ratio"]) == (12.5, 3.0, 2.0)
    assert [x["nodes"] for x in r["rows"]] == [1, 2, 8] and r["grid"] == 256
