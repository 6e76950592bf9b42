"""Several hosts: a Ray cluster of two real hosts made on this machine (rs.cluster.netns: own network and
UTS namespaces on a bridge, Ray started with the Slurm templates' arguments), the driver on the head.
`rs train` places its workers on both hosts with DDP over the bridge, checkpoints on the shared disk and
resumes; a worker host lost mid-run (every process killed at once) leaves an elastic run going on the head,
and the run grows back when the host returns; one MLflow run records every epoch exactly once.

Marked `cluster`: runs before the session's Ray exists (conftest)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rs.cluster import netns as netns_cluster

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
RANK_LINE = re.compile(r"\[rs\] rank (\d+) of (\d+) on (\S+) \(node (\w+)\) from epoch (\d+)")


@pytest.fixture(scope="module")
def hosts() -> Iterator[netns_cluster.NetnsCluster]:
    why = netns_cluster.missing()
    if why:
        pytest.skip(f"namespace hosts cannot be made here: {why}")
    cluster = netns_cluster.NetnsCluster(nodes=2, cpus_per_node=2, tag="m").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _train_argv(data_root: Path, runs: Path, *sets: str) -> list[str]:
    base = [f"data.root={data_root}", f"train.storage_path={runs}", "cluster.shared_storage=true",
            "train.num_workers=2", "train.cpus_per_worker=1", "train.placement_strategy=SPREAD",
            "train.max_steps_per_epoch=3", "train.run_name=multi", *sets]
    return [sys.executable, "-m", "rs", "train", "configs/train/debug.yaml", *[a for s in base for a in ("--set", s)]]


def _ranks(log: str) -> list[tuple[int, int, str, str, int]]:
    return [(int(r), int(w), host, node, int(e)) for r, w, host, node, e in RANK_LINE.findall(log)]


def _epochs(run: Path) -> list[int]:
    return sorted(json.loads(m.read_text())["epoch"] for m in run.glob("checkpoint_*/meta.json"))


def test_training_spans_two_hosts_and_resumes_from_shared_storage(hosts, data_root, tmp_path):
    runs = tmp_path / "runs"
    first = hosts.driver(_train_argv(data_root, runs, "train.epochs=1"), cwd=REPO, timeout=400)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    ranks = _ranks(first.stdout)
    assert sorted(r for r, *_ in ranks) == [0, 1] and {w for _, w, *_ in ranks} == {2}
    assert {h for _, _, h, _, _ in ranks} == {"rs-m-node0", "rs-m-node1"}, ranks  # one worker on each host
    assert len({n for *_, n, _ in ranks}) == 2
    assert "ip=198.18.0.2" in first.stdout  # the worker host's logs came over the bridge
    assert _epochs(runs / "multi") == [1]

    again = hosts.driver(_train_argv(data_root, runs, "train.epochs=2"), cwd=REPO, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert {e for *_, e in _ranks(again.stdout)} == {1}  # both ranks resumed after epoch 0 from the shared disk
    assert _epochs(runs / "multi")[-1] == 2


def test_a_lost_host_leaves_the_run_going_and_it_grows_back(hosts, data_root, tmp_path):
    from mlflow import MlflowClient

    runs = tmp_path / "runs"
    log = tmp_path / "driver.log"
    epochs = 8
    # 1.5 CPUs a worker on 2-CPU hosts: one worker per host, so the head alone holds one (0.5 left for reads).
    argv = _train_argv(data_root, runs, f"train.epochs={epochs}", "train.min_workers=1", "train.resize_interval_s=3",
                       "train.cpus_per_worker=1.5", "data.read_cpus=0.25", "tracking.mlflow.local=true",
                       "tracking.mlflow.experiment=multinode")
    driver = hosts.driver_popen(argv, log)

    def wait_for(what, timeout_s: float = 300) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while not what() and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        assert what(), log.read_text()[-4000:]

    try:
        both = {"rs-m-node0", "rs-m-node1"}
        wait_for(lambda: _epochs(runs / "multi") and {h for _, w, h, *_ in _ranks(log.read_text()) if w == 2} == both)
        killed = hosts.kill_node(1)  # a crash: raylet, object store, a worker and all, at once
        assert killed
        wait_for(lambda: any(w == 1 for _, w, *_ in _ranks(log.read_text())))  # goes on with the head alone
        hosts.restart_node(1)  # the host comes back
        rc = driver.wait(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
    text = log.read_text()
    assert rc == 0, text[-4000:]
    starts = [(w, e) for r, w, _, _, e in _ranks(text) if r == 0]  # (world size, first epoch) of each start
    shrunk = next(i for i, (w, _) in enumerate(starts) if w == 1)
    grown = [(w, e) for w, e in starts[shrunk:] if w == 2]
    assert grown and grown[-1][1] > starts[shrunk][1], starts  # grew back to both hosts, later in the run
    assert _epochs(runs / "multi")[-1] == epochs

    client = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("multinode").experiment_id])
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_rel_l2")
    steps = [m.step for m in history]
    assert len(steps) == len(set(steps)) == epochs, steps  # every epoch once: no gap, no duplicate
    epochs_logged = sorted(int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch"))
    assert epochs_logged == list(range(epochs)), epochs_logged
