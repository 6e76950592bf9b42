"""What a local Ray started by rs sets for Train, checked in a fresh process each (Ray starts once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

PROBE = """
import json, os, sys, time, ray
from rs.config import load_config
from rs.train.api import PREEMPTION_WATCHER_ENV, ensure_ray
ensure_ray(load_config('configs/train/debug.yaml', ['cluster.num_cpus=1', *sys.argv[1:]], env={}))

@ray.remote
def worker_gc():
    import gc
    import torch  # noqa: F401  (what a Train worker imports)
    deadline = time.monotonic() + 20
    while not gc.isenabled() and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}

print(json.dumps({"watcher": os.environ.get(PREEMPTION_WATCHER_ENV), **ray.get(worker_gc.remote())}))
ray.shutdown()
"""


@pytest.mark.parametrize("user_watcher,fast_start", [(None, True), ("1", False)])
def test_local_ray_sets_the_preemption_watcher_and_the_worker_gc_hook_unless_the_user_chose(
        user_watcher, fast_start, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")
           and "SETUP_HOOK" not in k}
    if user_watcher is not None:
        env["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] = user_watcher
    proc = subprocess.run([sys.executable, "-c", PROBE, f"cluster.fast_worker_start={fast_start}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["watcher"] == (user_watcher or "0")
    # Collection always ends up on; only the hook freezes the imported modules (a fresh process freezes none).
    assert got["enabled"] is True
    assert (got["frozen"] > 10_000) is fast_start, got
