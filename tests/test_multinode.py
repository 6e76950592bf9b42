"""Several hosts: a Ray cluster of two real hosts made on this machine (rs.cluster.netns: own network and
UTS namespaces on a bridge, Ray started with the Slurm templates' arguments), the driver on the head.
`rs train` places its workers on both hosts with DDP over the bridge, checkpoints on the shared disk and
resumes; a worker host lost mid-run (every process killed at once) leaves an elastic run going on the head,
and the run grows back when the host returns; one MLflow run records every epoch exactly once.

Marked `cluster`: runs before the session's Ray exists (conftest)."""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rs.bench.common import read_result
from rs.cluster import netns as netns_cluster

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]
BOTH = {"rs-m-node0", "rs-m-node1"}
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


def _hosts_seen(log: Path, world: int | None = None) -> set[str]:
    return {h for _, w, h, _, _ in _ranks(log.read_text()) if world is None or w == world}


def _wait_for(what, driver, log: Path, timeout_s: float = 400) -> None:  # type: ignore[no-untyped-def]
    """Until `what()` holds while the background driver runs; its log tail when it never does."""
    deadline = time.monotonic() + timeout_s
    while not what() and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert what(), log.read_text()[-4000:]


def test_training_spans_two_hosts_and_resumes_from_shared_storage(hosts, data_root, tmp_path):
    runs = tmp_path / "runs"
    first = hosts.driver(_train_argv(data_root, runs, "train.epochs=1"), cwd=REPO, timeout=400)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    ranks = _ranks(first.stdout)
    assert sorted(r for r, *_ in ranks) == [0, 1] and {w for _, w, *_ in ranks} == {2}
    assert {h for _, _, h, _, _ in ranks} == BOTH, ranks  # one worker on each host
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
    epochs = 16  # long enough to see the host return: a resize starts ~25 s after it is back
    # 1.5 CPUs a worker on 2-CPU hosts: one worker per host, so the head alone holds one (0.5 left for reads).
    argv = _train_argv(data_root, runs, f"train.epochs={epochs}", "train.min_workers=1", "train.resize_interval_s=3",
                       "train.cpus_per_worker=1.5", "data.read_cpus=0.25", "tracking.mlflow.local=true",
                       "tracking.mlflow.experiment=multinode")
    driver = hosts.driver_popen(argv, log)
    try:
        _wait_for(lambda: _epochs(runs / "multi") and _hosts_seen(log, world=2) == BOTH, driver, log)
        killed = hosts.kill_node(1)  # a crash: raylet, object store, a worker and all, at once
        assert killed
        _wait_for(lambda: _hosts_seen(log, world=1), driver, log)  # goes on with the head alone
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
    by_epoch = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "step"))
    opt_steps = [v for _, v in by_epoch]
    assert all(b > a for a, b in itertools.pairwise(opt_steps)), by_epoch  # steps go on, never back


READS_AND_SPLIT = r'''
import json, socket, sys
import ray, ray.train
from ray.train import DataConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.state import list_tasks
from rs.bench.common import print_result
from rs.config import load_config
from rs.data.source import EpochClock, build_split, iterate
from rs.train.distributed import TorchConfig  # Ray's own would bind Gloo to 127.0.0.1 here (docs/clusters.md traps)

def loop(config):
    import json, socket, ray, ray.train
    from rs.train.pipeline import open_epoch
    rank = ray.train.get_context().get_world_rank()
    for epoch in range(2):
        seen = [(str(s), int(t)) for b in open_epoch(config, "train", epoch, 4, rank, first_key=True)
                for s, t in zip(b.meta["sim"], b.meta["frame"])]
        with open(f"{config['out']}/seen-{epoch}-{rank}.json", "w") as fh:
            json.dump({"seen": seen, "host": socket.gethostname()}, fh)
        ray.train.report({"epoch": epoch})

root, out = sys.argv[1], sys.argv[2]
ray.init()
cfg = load_config("configs/train/debug.yaml", [f"data.root={root}", "data.read_block_frames=4", "data.read_cpus=0.5"],
                  env={})
clock = EpochClock.remote()
tr = build_split(cfg, "train", clock=clock)
# A pass in the driver on the head: blocks read on the other host cross object stores to get here.
driver_keys = [(str(s), int(t)) for b in iterate(tr.datasets["train"], 8)
               for s, t in zip(b.meta["sim"], b.meta["frame"])]
TorchTrainer(loop, train_loop_config={"clock": clock, "out": out}, torch_config=TorchConfig(),
             scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}, placement_strategy="SPREAD"),
             datasets={"train": tr.datasets["train"]}, dataset_config=DataConfig(datasets_to_split=["train"]),
             run_config=RunConfig(name="split", storage_path=f"{out}/runs")).fit()
job = ray.get_runtime_context().get_job_id()  # this driver's reads, not those of earlier runs on the cluster
reads = [t for t in list_tasks(filters=[("job_id", "=", job)], detail=True, limit=10000)
         if t.name.startswith("ReadPhaseField")]
nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
print_result({"samples": tr.samples, "driver_keys": driver_keys,
              "read_hosts": sorted({nodes.get(t.node_id, "?") for t in reads}), "reads": len(reads)})
'''


def test_data_reads_run_on_both_hosts_and_each_sample_is_seen_once_per_epoch(hosts, data_root, tmp_path):
    proc = hosts.driver([sys.executable, "-c", READS_AND_SPLIT, str(data_root), str(tmp_path)], cwd=REPO,
                        timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = read_result(proc.stdout)  # Train workers' forwarded logs may come after the result line
    assert r["read_hosts"] == ["198.18.0.1", "198.18.0.2"], r  # read tasks ran on both hosts
    keys = [tuple(k) for k in r["driver_keys"]]
    assert len(keys) == len(set(keys)) == r["samples"]  # the head's pass got every sample, the other host's too
    for epoch in (0, 1):
        ranks = [json.loads((tmp_path / f"seen-{epoch}-{rank}.json").read_text()) for rank in (0, 1)]
        assert {x["host"] for x in ranks} == BOTH
        seen = [tuple(k) for x in ranks for k in x["seen"]]
        assert len(seen) == len(set(seen)) == r["samples"], "every train sample exactly once across the hosts"


def test_cluster_submit_from_the_heads_host_succeeds(hosts, data_root, tmp_path):
    proc = hosts.driver([sys.executable, "-m", "rs", "cluster", "submit", "--address", hosts.dashboard,
                         "--base-dir", str(tmp_path), "--", "rs", "train", "configs/train/debug.yaml",
                         "--set", f"data.root={data_root}", "--set", "train.storage_path=runs",
                         "--set", "cluster.shared_storage=true", "--set", "train.placement_strategy=SPREAD",
                         "--set", "train.cpus_per_worker=1", "--set", "train.epochs=1",
                         "--set", "train.max_steps_per_epoch=2"], cwd=REPO, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SUCCEEDED" in proc.stdout
    assert {h for _, _, h, _, _ in _ranks(proc.stdout)} == BOTH
    assert _epochs(tmp_path / "runs" / "debug") == [1]


def test_sweep_spans_both_hosts_and_a_lost_host_costs_no_trial(hosts, data_root, tmp_path):
    """Two trials at once, one worker each, 1.5 of a host's 2 CPUs per worker: one trial per host. The worker
    host is killed mid-sweep and comes back; its trial resumes from its checkpoint and the sweep accounts for
    every trial."""
    runs = tmp_path / "runs"
    log = tmp_path / "tune.log"
    epochs = 5
    sets = [f"data.root={data_root}", f"train.storage_path={runs}", "cluster.shared_storage=true",
            "tune.num_samples=2", "tune.scheduler=fifo", "tune.optuna_storage=null", "tune.name=sweep",
            "tune.max_retries=2", f"train.epochs={epochs}", "train.max_steps_per_epoch=3", "train.cpus_per_worker=1.5",
            "data.read_cpus=0.25"]
    driver = hosts.driver_popen([sys.executable, "-m", "rs", "tune", "configs/tune/debug.yaml",
                                 *[a for x in sets for a in ("--set", x)]], log)
    trials = runs / "sweep" / "trials"

    def checkpointed() -> int:
        return sum(1 for d in trials.glob("trial_*") if _epochs(d)) if trials.is_dir() else 0

    try:
        _wait_for(lambda: checkpointed() == 2 and _hosts_seen(log) == BOTH, driver, log)  # trials on both hosts
        hosts.kill_node(1)
        time.sleep(5)
        hosts.restart_node(1)
        rc = driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    text = log.read_text()
    assert rc == 0, text[-4000:]
    assert "[rs] resumed from epoch" in text  # the lost host's trial continued from its checkpoint
    board = json.loads((runs / "sweep" / "leaderboard.json").read_text())
    assert len(board) == 2 and all(r["status"] == "TERMINATED" and r["epochs"] == epochs for r in board), board
    assert all(_epochs(d)[-1] == epochs for d in trials.glob("trial_*"))


def test_head_lost_then_the_same_command_resumes_on_a_new_cluster(hosts, data_root, tmp_path):
    """Last in the module: it takes the whole cluster down. The driver runs on the head's host, so it dies
    with it; a new cluster at the same address and the same command continue from the shared checkpoint."""
    runs = tmp_path / "runs"
    log = tmp_path / "driver.log"
    argv = _train_argv(data_root, runs, "train.epochs=6")
    driver = hosts.driver_popen(argv, log)
    try:
        _wait_for(lambda: _epochs(runs / "multi"), driver, log)
        hosts.kill_node(0)  # the head: GCS, dashboard, the driver and its controller
        hosts.kill_node(1)  # its worker host goes down with the cluster (as on a Slurm job's end)
        assert driver.wait(timeout=60) != 0
    finally:
        if driver.poll() is None:
            driver.kill()
    done = _epochs(runs / "multi")[-1]
    assert done < 6
    hosts.restart_node(0)
    hosts.restart_node(1)
    hosts.wait_nodes(2)
    again = hosts.driver(argv, cwd=REPO, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert min(e for *_, e in _ranks(again.stdout)) >= done  # resumed, nothing retrained before the last checkpoint
    assert _epochs(runs / "multi")[-1] == 6

