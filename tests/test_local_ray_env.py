"""What a local Ray started by rs sets for Train, checked in a fresh process each (Ray starts once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

PROBE = """
import os, ray
from rs.config import load_config
from rs.train.api import PREEMPTION_WATCHER_ENV, ensure_ray
ensure_ray(load_config('configs/train/debug.yaml', ['cluster.num_cpus=1'], env={}))
print(os.environ.get(PREEMPTION_WATCHER_ENV))
ray.shutdown()
"""


@pytest.mark.parametrize("user,expected", [(None, "0"), ("1", "1")])
def test_local_ray_turns_off_the_preemption_watcher_unless_the_user_chose(user, expected, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER")}
    if user is not None:
        env["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] = user
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == expected
