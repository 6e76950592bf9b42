"""A real single-node Slurm running the rendered templates: a persistent Ray cluster taking jobs, and a
one-shot `ray symmetric-run` training run; scancel and the end of a job leave nothing behind.

Marked `cluster`: conftest runs these before anything starts the session's Ray, because `ray symmetric-run`
refuses to start on a node where another Ray runs (the Ray-head tests live in their own module for that)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import slurm_local
from conftest import TINY_TRAIN

from rs.cluster.slurm import parse_env_file

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
RS = [sys.executable, "-m", "rs"]


@pytest.fixture(scope="module")
def local_slurm() -> Iterator[slurm_local.LocalSlurm]:
    why = slurm_local.missing()
    if why:
        pytest.skip(f"no single-node Slurm can run here: {why}")
    root = Path(tempfile.mkdtemp(prefix="rsslurm", dir="/tmp"))  # short: munge's socket lives here
    cluster = slurm_local.LocalSlurm(root).start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _job_processes(job_id: str) -> list[psutil.Process]:
    """Every process of a Slurm job: its slurmstepd daemons and all their descendants (Ray included)."""
    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(f"[{job_id}." in part for part in proc.info["cmdline"] or []):
            procs += [proc, *proc.children(recursive=True)]
    return procs


def _alive(procs: list[psutil.Process]) -> list[str]:
    return [f"{p.pid} {' '.join(p.cmdline())[:100]}" for p in procs
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_slurm_persistent_cluster_takes_jobs_and_scancel_leaves_nothing(local_slurm, tmp_path):
    state = tmp_path / "state"
    proc = subprocess.run([*RS, "cluster", "slurm", "submit", "--nodes", "1", "--cpus-per-node", "2", "--workdir",
                           str(REPO), "--state-dir", str(state), "--storage-path", str(tmp_path / "runs"),
                           "--timeout", "240"], env=local_slurm.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = proc.stdout.split("as Slurm job ")[1].split(";")[0]
    address = parse_env_file(state / f"ray-{job_id}.env")
    assert address["RAY_AUTH_MODE"] == "token" and address["RAY_API_SERVER_ADDRESS"].startswith("http://")
    assert "ssh -N -L 8265:" in (state / f"ray-{job_id}.env").read_text()  # the tunnel hint
    check = ("import os, ray; ray.init(); assert ray.cluster_resources()['CPU'] == 2; "
             "print('STORAGE', os.environ['RS_TRAIN__STORAGE_PATH'], os.environ['HDF5_USE_FILE_LOCKING'])")
    job = subprocess.run([*RS, "cluster", "submit", "--", "python", "-c", check], cwd=REPO,
                         env={**local_slurm.env, **address}, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stdout + job.stderr
    assert f"STORAGE {tmp_path / 'runs'} FALSE" in job.stdout  # the allocation's environment reaches jobs

    procs = _job_processes(job_id)
    assert any("raylet" in " ".join(p.cmdline()) for p in procs), "Ray is not running inside the job"
    subprocess.run(["scancel", job_id], env=local_slurm.env, check=True)
    local_slurm.wait_job_gone(job_id, timeout_s=90)
    psutil.wait_procs(procs, timeout=30)
    assert not _alive(procs), _alive(procs)
    assert not (state / f"ray-{job_id}.env").exists()  # a stale address would point at nothing
    assert not Path(f"/tmp/rs-{job_id}").exists()  # Ray's node-local temp dir is cleaned
    log = (state / f"rs-ray-{job_id}.log").read_text()
    assert "[rs] Ray stopped" in log, log[-2000:]


def test_slurm_oneshot_symmetric_run_trains_and_tears_down(local_slurm, data_root, tmp_path):
    proc = subprocess.run([*RS, "cluster", "slurm", "submit", "--mode", "oneshot", "--nodes", "1",
                           "--cpus-per-node", "2", "--workdir", str(REPO), "--state-dir", str(tmp_path / "state"),
                           "--storage-path", str(tmp_path / "runs"), "--job-name", "rs-oneshot", "--",
                           "rs", "train", "configs/train/debug.yaml", "--set", f"data.root={data_root}", *TINY_TRAIN],
                          env=local_slurm.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = proc.stdout.split("as Slurm job ")[1].split(";")[0]
    local_slurm.wait_job_gone(job_id, timeout_s=400)
    state = local_slurm.job_state(job_id)
    log = (tmp_path / "state" / f"rs-oneshot-{job_id}.log").read_text()
    assert state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0", log[-3000:]
    assert list((tmp_path / "runs" / "debug").glob("checkpoint_*/model.safetensors")), log[-3000:]
    assert not slurm_local.live_processes(f"/tmp/rs-{job_id}/")  # symmetric-run stopped Ray
