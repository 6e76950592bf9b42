"""`ray job submit` against real `ray start --head` clusters on loopback, as a user in a new shell runs them:
a plain head (no token anywhere: a fresh home) and a token head (its token made by `python -m
rs.cluster.auth`, what the Slurm templates run). A tiny training job reaches SUCCEEDED with a checkpoint
on both; a failing job makes `rs cluster submit` exit non-zero; a wrong or missing token gets one clear
error naming what to do.

Marked `cluster`: runs before the session's Ray exists (two Ray instances confuse Train V2's cleaner)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY_TRAIN, kill_session

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RS = [sys.executable, "-m", "rs"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Head:
    kind: str
    dashboard: str  # http://127.0.0.1:PORT, where jobs are submitted
    gcs: str  # HOST:PORT, where drivers connect
    env: dict[str, str]  # a new shell of the user who started it: the venv on PATH, their home, no RAY_AUTH_*


def _user_shell(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS", "RS_"))}
    return {**env, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module", params=["plain", "token"])
def ray_head(request: pytest.FixtureRequest) -> Iterator[Head]:
    """`ray start --head` on loopback, its own temp dir and home, torn down by the session its daemons share."""
    temp = tempfile.mkdtemp(prefix="rsh", dir="/tmp")
    home = Path(tempfile.mkdtemp(prefix="rshome"))
    env = _user_shell(home)
    start_env = dict(env)
    if request.param == "token":
        start_env["RAY_AUTH_MODE"] = "token"
        made = subprocess.run([sys.executable, "-m", "rs.cluster.auth"], env=start_env, capture_output=True,
                              text=True, check=True)
        assert made.stdout.strip() == str(home / ".ray" / "auth_token")
    dashboard, gcs = _port(), _port()
    cmd = [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
           f"--dashboard-agent-listen-port={_port()}", f"--ray-client-server-port={_port()}", "--num-cpus=2",
           "--object-store-memory=268435456", f"--temp-dir={temp}", "--disable-usage-stats"]
    starter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=start_env,
                               start_new_session=True)  # every Ray daemon inherits this session id
    started = subprocess.CompletedProcess(cmd, starter.wait(timeout=180), starter.communicate()[0])
    try:
        assert started.returncode == 0, started.stdout
        host = started.stdout.split("ray start --address='")[1].split(":")[0]  # Ray maps 127.0.0.1 to the host
        yield Head(request.param, f"http://127.0.0.1:{dashboard}", f"{host}:{gcs}", env)
    finally:
        kill_session(starter.pid)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def _checkpoints(root: Path) -> list[Path]:
    return list((root / "runs" / "debug").glob("checkpoint_*/model.safetensors"))


def test_job_submitted_to_a_ray_head_trains_and_writes_a_checkpoint(ray_head, data_root, tmp_path):
    train = ["rs", "train", "configs/train/debug.yaml", "--set", f"data.root={data_root}", *TINY_TRAIN]
    if ray_head.kind == "plain":
        # Ray's own quickstart, as docs/getting-started/any-cluster.md types it: absolute paths, since the job's
        # working dir is a temporary copy of this one.
        cmd = [str(BIN / "ray"), "job", "submit", "--address", ray_head.dashboard, "--working-dir", ".",
               "--runtime-env", "jobs/runtime_env.yaml", "--", *train,
               "--set", f"train.storage_path={tmp_path / 'runs'}"]
        done = "succeeded"
    else:  # --base-dir: relative paths of the config resolve there, not in the job's temporary working dir
        cmd = [*RS, "cluster", "submit", "--address", ray_head.dashboard, "--base-dir", str(tmp_path), "--",
               *train, "--set", "train.storage_path=runs"]
        done = "SUCCEEDED"
    proc = subprocess.run(cmd, cwd=REPO, env=ray_head.env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert done in proc.stdout and "best val_rel_l2" in proc.stdout  # the job's log was followed
    assert _checkpoints(tmp_path), sorted(p.name for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("ray_head", ["token"], indirect=True)
def test_failing_job_exits_non_zero(ray_head):
    proc = subprocess.run([*RS, "cluster", "submit", "--address", ray_head.dashboard, "--", "rs", "train",
                           "configs/nope.yaml"], cwd=REPO, env=ray_head.env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "configs/nope.yaml" in proc.stdout


@pytest.mark.parametrize("ray_head", ["token"], indirect=True)
@pytest.mark.parametrize("token", ["wrong", "none"])
def test_driver_without_the_clusters_token_gets_one_clear_error(ray_head, data_root, tmp_path, token):
    env = {**ray_head.env, "HOME": str(tmp_path), "RAY_ADDRESS": ray_head.gcs}  # a home without the token
    if token == "wrong":
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64)
    proc = subprocess.run([*RS, "train", "configs/train/debug.yaml", "--set", f"data.root={data_root}",
                           "--set", f"train.storage_path={tmp_path / 'runs'}", *TINY_TRAIN],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert err and "refused this process" in err[-1] and "RAY_AUTH_TOKEN_PATH=" in err[-1], proc.stderr[-3000:]
    assert ("is not its token" if token == "wrong" else "has no token") in err[-1]
    assert "Traceback" not in proc.stderr  # one clear error, not a stack
    assert not _checkpoints(tmp_path)

    submit = subprocess.run([*RS, "cluster", "submit", "--address", ray_head.dashboard, "--", "true"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert submit.returncode != 0
    assert "refused" in submit.stderr and "RAY_AUTH_TOKEN_PATH=" in submit.stderr, submit.stderr[-3000:]
    assert "Traceback" not in submit.stderr
