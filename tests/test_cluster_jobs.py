"""`ray job submit` against a real `ray start --head` on loopback: a tiny training job reaches SUCCEEDED
and leaves a checkpoint; a failing job makes `rs cluster submit` exit non-zero.

Marked `cluster`: runs before the session's Ray exists (two Ray instances confuse Train V2's cleaner)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY_TRAIN, kill_session

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
RS = [sys.executable, "-m", "rs"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """`ray start --head` on loopback, its own temp dir, torn down by the PIDs that carry that dir."""
    temp = tempfile.mkdtemp(prefix="rsh", dir="/tmp")
    dashboard, gcs = _port(), _port()
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address=127.0.0.1",
           f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
           f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={_port()}",
           f"--ray-client-server-port={_port()}", "--num-cpus=2", "--object-store-memory=268435456",
           f"--temp-dir={temp}", "--disable-usage-stats"]
    # As a user starts it: from the activated venv, so job entrypoints find `rs` and `python` there.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    starter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)  # every Ray daemon inherits this session id
    started = subprocess.CompletedProcess(cmd, starter.wait(timeout=180), starter.communicate()[0])
    try:
        assert started.returncode == 0, started.stdout
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        kill_session(starter.pid)
        shutil.rmtree(temp, ignore_errors=True)


def test_job_submitted_to_a_ray_head_trains_and_writes_a_checkpoint(ray_head, data_root, tmp_path):
    # --base-dir: relative paths of the config resolve there, not in the job's temporary working dir.
    proc = subprocess.run(
        [*RS, "cluster", "submit", "--address", ray_head, "--base-dir", str(tmp_path), "--",
         "rs", "train", "configs/train/debug.yaml", "--set", f"data.root={data_root}",
         "--set", "train.storage_path=runs", *TINY_TRAIN],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SUCCEEDED" in proc.stdout and "best val_rel_l2" in proc.stdout  # the job's log was followed
    checkpoints = list((tmp_path / "runs" / "debug").glob("checkpoint_*/model.safetensors"))
    assert checkpoints, sorted(p.name for p in (tmp_path / "runs").rglob("*"))


def test_failing_job_exits_non_zero(ray_head):
    proc = subprocess.run([*RS, "cluster", "submit", "--address", ray_head, "--", "rs", "train", "configs/nope.yaml"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "configs/nope.yaml" in proc.stdout
