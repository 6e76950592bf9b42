"""Slurm allocations of two nodes: a real slurmctld and two slurmd, each slurmd on its own namespace host
(own address, hostname, PID namespace and node-local scratch; tests/slurm_local.py), running the rendered
templates as a user would: the persistent cluster (head on the first node, a worker on the second, a
training job with one worker on each, scancel), and the one-shot `ray symmetric-run` (a training run
across both nodes; a failing entrypoint). Nothing of a job may be left on either host after it.

Marked `cluster`: runs before the session's Ray exists (conftest)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_local

from rs.cluster import netns
from rs.cluster.slurm import parse_env_file

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
RS = [sys.executable, "-m", "rs"]
HOSTS = {"rs-s-node0", "rs-s-node1"}
RANK_LINE = re.compile(r"\[rs\] rank (\d+) of (\d+) on (\S+) \(node \w+\)")


@pytest.fixture(scope="module")
def slurm2() -> Iterator[slurm_local.LocalSlurm]:
    why = slurm_local.missing() or netns.missing()
    if why:
        pytest.skip(f"no two-node Slurm can run here: {why}")
    root = Path(tempfile.mkdtemp(prefix="rs2s", dir="/tmp"))  # short: Ray's sockets live under it
    cluster = slurm_local.LocalSlurm(root, nodes=2).start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _slurm_args(slurm2: slurm_local.LocalSlurm, tmp_path: Path) -> list[str]:
    return ["--nodes", "2", "--cpus-per-node", "2", "--workdir", str(REPO), "--state-dir", str(tmp_path / "state"),
            "--storage-path", str(tmp_path / "runs"), "--shared-storage", "--temp-root", str(slurm2.local_dir),
            "--local-scratch", str(slurm2.local_dir)]


def _train(data_root: Path) -> list[str]:
    sets = [f"data.root={data_root}", "train.num_workers=2", "train.cpus_per_worker=1",
            "train.placement_strategy=SPREAD", "train.epochs=1", "train.max_steps_per_epoch=2"]
    return ["rs", "train", "configs/train/debug.yaml", *[a for s in sets for a in ("--set", s)]]


def _job_id(stdout: str) -> str:
    return stdout.split("as Slurm job ")[1].split(";")[0]


def _assert_hosts_clean(slurm2: slurm_local.LocalSlurm, idle: list[set[int]]) -> None:
    """Each host runs exactly what it ran before the job (its slurmd), and holds none of the job's dirs."""
    deadline = time.time() + 30
    while time.time() < deadline and any(set(slurm2.host_pids(i)) != idle[i] for i in range(2)):
        time.sleep(1)
    for i in range(2):
        left = set(slurm2.host_pids(i)) - idle[i]
        assert not left, f"node{i} still runs {[Path(f'/proc/{p}/cmdline').read_text() for p in left]}"
        assert not list(slurm2.node_local(i).iterdir()), f"node{i} keeps {list(slurm2.node_local(i).iterdir())}"


def test_two_node_persistent_cluster_trains_on_both_and_scancel_leaves_nothing(slurm2, data_root, tmp_path):
    idle = [set(slurm2.host_pids(i)) for i in range(2)]
    proc = subprocess.run([*RS, "cluster", "slurm", "submit", *_slurm_args(slurm2, tmp_path), "--timeout", "240"],
                          env=slurm2.env, capture_output=True, text=True, timeout=300)
    job_id = _job_id(proc.stdout)
    log = tmp_path / "state" / f"rs-ray-{job_id}.log"
    assert proc.returncode == 0, proc.stdout + proc.stderr + (log.read_text()[-3000:] if log.exists() else "")
    address = parse_env_file(tmp_path / "state" / f"ray-{job_id}.env")
    assert address["RAY_ADDRESS"].startswith("198.18.0.1:")  # the head on the allocation's first node
    for i in range(2):  # a Ray node on each host, in its node-local scratch
        assert (slurm2.node_local(i) / f"rs-{job_id}").is_dir(), f"no Ray temp dir on node{i}"

    # As a user does: source the address file in a shell, then submit.
    submit = (f"source {shlex.quote(str(tmp_path / 'state' / f'ray-{job_id}.env'))} && "
              f"exec {shlex.join([*RS, 'cluster', 'submit', '--', *_train(data_root)])}")
    job = subprocess.run(["bash", "-c", submit], cwd=REPO, env=slurm2.env, capture_output=True, text=True,
                         timeout=400)
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
    ranks = {(int(r), int(w), host) for r, w, host in RANK_LINE.findall(job.stdout)}
    assert {host for _, w, host in ranks if w == 2} == HOSTS, job.stdout[-3000:]  # one worker on each node
    assert list((tmp_path / "runs" / "debug").glob("checkpoint_*/model.safetensors"))

    subprocess.run(["scancel", job_id], env=slurm2.env, check=True)
    slurm2.wait_job_gone(job_id, timeout_s=90)
    _assert_hosts_clean(slurm2, idle)
    assert not (tmp_path / "state" / f"ray-{job_id}.env").exists()  # a stale address would point at nothing
    assert "[rs] Ray stopped" in log.read_text(), log.read_text()[-2000:]


def _oneshot(slurm2: slurm_local.LocalSlurm, tmp_path: Path, name: str, command: list[str],
             timeout_s: float) -> tuple[dict[str, str], str]:
    """Submit a one-shot job, wait until it is gone: (its `scontrol show job` fields, its log)."""
    proc = subprocess.run([*RS, "cluster", "slurm", "submit", "--mode", "oneshot", *_slurm_args(slurm2, tmp_path),
                           "--job-name", name, "--", *command],
                          env=slurm2.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = _job_id(proc.stdout)
    slurm2.wait_job_gone(job_id, timeout_s=timeout_s)
    return slurm2.job_state(job_id), (tmp_path / "state" / f"{name}-{job_id}.log").read_text()


def test_two_node_oneshot_trains_on_both_and_exits_zero(slurm2, data_root, tmp_path):
    idle = [set(slurm2.host_pids(i)) for i in range(2)]
    state, log = _oneshot(slurm2, tmp_path, "rs-oneshot", _train(data_root), timeout_s=400)
    assert state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0", (state, log[-4000:])
    assert {host for _, w, host in RANK_LINE.findall(log) if w == "2"} == HOSTS, log[-3000:]
    assert list((tmp_path / "runs" / "debug").glob("checkpoint_*/model.safetensors")), log[-3000:]
    _assert_hosts_clean(slurm2, idle)


def test_two_node_oneshot_failing_entrypoint_exits_nonzero_and_tears_down_both(slurm2, tmp_path):
    idle = [set(slurm2.host_pids(i)) for i in range(2)]
    state, log = _oneshot(slurm2, tmp_path, "rs-fail", ["python", "-c", "raise SystemExit(3)"], timeout_s=300)
    assert state.get("JobState") == "FAILED" and state.get("ExitCode") == "3:0", (state, log[-3000:])
    assert "Command failed with return code 3" in log, log[-3000:]
    _assert_hosts_clean(slurm2, idle)
