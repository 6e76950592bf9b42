"""`rs bench cluster`: the price of crossing nodes, in one run on this machine (root: namespace hosts).

The same training run and the same data-only pass on a 1-node cluster and on a 2-node cluster of namespace
hosts with the same CPUs in all (`rs.cluster.netns`); `scaleout_ratio` is 2-node over 1-node training
samples/s (1.0 ideal: what the network path and placement cost). Then a worker host is killed in an elastic
run and `node_loss_recovery_s` is the time from its death to the next optimizer step."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from rs.bench.common import REPO, default_config, ensure_data, machine, read_result
from rs.cluster.netns import NetnsCluster

FIRST_STEP = re.compile(r"\[rs\] first optimizer step")
DATA_COPIES = 32


def _train(cluster: NetnsCluster, config: Path, sets: list[str], runs: Path) -> dict[str, float]:
    args = [*sets, f"train.storage_path={runs}", "train.run_name=bench", "cluster.shared_storage=true"]
    proc = cluster.driver([sys.executable, "-m", "rs.bench.train", "ray", str(config), json.dumps(args), "0"],
                          cwd=REPO, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"training on {cluster.nodes} node(s) failed: {proc.stderr[-2000:]}")
    return read_result(proc.stdout)


def _data_pass(cluster: NetnsCluster, root: Path, batch_size: int, passes: int) -> float:
    code = ("from pathlib import Path; from rs.bench.common import print_result; from rs.bench.data import ray_read; "
            "import ray; ray.init(); "
            f"r = [ray_read(Path({str(root)!r}), {batch_size}) for _ in range({passes + 1})][1:]; "
            "print_result({'samples_per_s': sorted(x['samples_per_s'] for x in r)[len(r) // 2]})")
    proc = cluster.driver([sys.executable, "-c", code], cwd=REPO, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"data pass on {cluster.nodes} node(s) failed: {proc.stderr[-2000:]}")
    return float(read_result(proc.stdout)["samples_per_s"])


def _recovery(cluster: NetnsCluster, config: Path, sets: list[str], runs: Path, work: Path) -> float:
    """Seconds from a worker host's death to the next optimizer step of the elastic run that lost it."""
    log = work / "recovery.log"
    # 0.75 of a 1-CPU host per worker: the surviving host takes one worker, not two, and keeps a quarter CPU
    # for Ray Data's reads (two 0.5-CPU workers there would leave reads no CPU and wait forever).
    args = [*sets, f"train.storage_path={runs}", "train.run_name=recovery", "cluster.shared_storage=true",
            "train.min_workers=1", "train.epochs=20", "train.cpus_per_worker=0.75", "data.read_cpus=0.25"]
    driver = cluster.driver_popen([sys.executable, "-m", "rs", "train", str(config),
                                   *[a for s in args for a in ("--set", s)]], log)
    try:
        deadline = time.monotonic() + 600
        while not list((runs / "recovery").glob("checkpoint_*/meta.json")):
            if driver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the recovery run never checkpointed: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        before = len(FIRST_STEP.findall(log.read_text()))
        cluster.kill_node(1)
        t_dead = time.monotonic()
        while len(FIRST_STEP.findall(log.read_text())) <= before:
            if driver.poll() is not None or time.monotonic() > t_dead + 600:
                raise RuntimeError(f"no optimizer step after the node was lost: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        return time.monotonic() - t_dead
    finally:
        driver.kill()
        driver.wait(timeout=60)


def run(work: Path, config: Path | None = None, overrides: list[str] | None = None, epochs: int = 3,
        batch_size: int = 32, passes: int = 3) -> dict[str, Any]:
    config = config or default_config("configs/train/debug.yaml")
    from rs.config import load_config

    overrides = list(overrides or [])
    root = load_config(config, overrides).data.root
    generate_s = ensure_data(config, root, overrides)
    # Two workers and two CPUs in all: one node of 2 CPUs, or two of 1 with one worker on each.
    sets = [*overrides, f"train.epochs={epochs}", "train.num_workers=2", "train.cpus_per_worker=0.5",
            "train.placement_strategy=SPREAD", "data.read_cpus=0.5"]
    out: dict[str, Any] = {"machine": machine(), "config": str(config), "epochs": epochs,
                           "generate_s": round(generate_s, 1)}
    # The data-only pass reads a 32x copy of the train split (the debug split alone is a 7 ms pass: noise).
    from rs.bench.data import make_files

    data_root = make_files(root, work / f"x{DATA_COPIES}", DATA_COPIES, None)
    for nodes in (1, 2):
        cluster = NetnsCluster(nodes=nodes, cpus_per_node=2 // nodes, tag=f"b{nodes}").start()
        try:
            trained = _train(cluster, config, sets, work / f"runs{nodes}")
            out[f"train_samples_per_s_{nodes}node"] = trained["steady_samples_per_s"]
            out[f"train_epoch_samples_per_s_{nodes}node"] = trained["samples_per_s"]
            out[f"data_samples_per_s_{nodes}node"] = _data_pass(cluster, data_root, batch_size, passes)
            if nodes == 2:
                out["node_loss_recovery_s"] = _recovery(cluster, config, sets, work / "runs-loss", work)
        finally:
            cluster.stop()
    out["scaleout_ratio"] = out["train_samples_per_s_2node"] / out["train_samples_per_s_1node"]
    out["data_scaleout_ratio"] = out["data_samples_per_s_2node"] / out["data_samples_per_s_1node"]
    return out


def table(r: dict[str, Any]) -> str:
    rows = [("training steady smp/s", "train_samples_per_s", "scaleout_ratio"),
            ("data-only pass smp/s", "data_samples_per_s", "data_scaleout_ratio")]
    return "\n".join([
        f"cluster bench: {r['config']}, {r['epochs']} epochs, 2 workers and 2 CPUs in all; {r['machine']}",
        f"{'':<28} {'1 node':>10} {'2 nodes':>10} {'2 / 1':>7}",
        *(f"{name:<28} {r[key + '_1node']:>10.1f} {r[key + '_2node']:>10.1f} {r[ratio]:>7.2f}"
          for name, key, ratio in rows),
        f"node_loss_recovery_s (a worker host killed -> next optimizer step): {r['node_loss_recovery_s']:.1f}",
    ])
