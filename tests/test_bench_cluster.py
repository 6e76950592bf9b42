"""`rs bench cluster` (bench-scale: slow). It makes its own namespace clusters, so it lives apart from
tests/test_multinode.py's module cluster (one namespace cluster at a time on a machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_cluster_prints_its_keys(tmp_path):
    """Both clusters, the ratio and the recovery time (~8 min)."""
    proc = subprocess.run([sys.executable, "-m", "rs", "bench", "cluster", "--json", "--epochs", "2", "--passes", "1",
                           "--work", str(tmp_path / "work")], cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("train_samples_per_s_1node", "train_samples_per_s_2node", "data_samples_per_s_1node",
                "data_samples_per_s_2node", "scaleout_ratio", "node_loss_recovery_s"):
        assert r[key] > 0, (key, r)
    assert r["scaleout_ratio"] == pytest.approx(r["train_samples_per_s_2node"] / r["train_samples_per_s_1node"])
