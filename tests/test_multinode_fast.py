"""Several nodes with Ray's own multi-node harness (`ray.cluster_utils.Cluster`: one raylet and object store per
node, all on this host's address): the placement semantics of `rs train` without root or namespaces, so a
developer's machine runs them too (tests/test_multinode.py makes real hosts).

Marked `cluster`: runs before the session's Ray exists (conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    from ray.cluster_utils import Cluster

    from rs.cluster.auth import for_new_cluster

    for_new_cluster("token")  # the harness starts a head like `ray start --head`: the token first
    store = 192 * 1024 * 1024
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "object_store_memory": store})
    try:
        cluster.add_node(num_cpus=2, object_store_memory=store)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()  # kills the processes it started, by handle


def test_spread_places_one_worker_on_each_node(two_nodes, data_root, tmp_path):
    env = {**os.environ, "RAY_ADDRESS": two_nodes}
    sets = [f"data.root={data_root}", f"train.storage_path={tmp_path / 'runs'}", "cluster.shared_storage=true",
            "train.num_workers=2", "train.cpus_per_worker=1", "train.placement_strategy=SPREAD", "train.epochs=1",
            "train.max_steps_per_epoch=2"]
    proc = subprocess.run([sys.executable, "-m", "rs", "train", "configs/train/debug.yaml",
                           *[a for s in sets for a in ("--set", s)]], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodes = {line.split("(node ")[1].split(")")[0] for line in proc.stdout.splitlines() if "[rs] rank " in line}
    assert len(nodes) == 2, proc.stdout[-3000:]  # the two ranks on two raylets
    assert list((tmp_path / "runs" / "debug").glob("checkpoint_*/model.safetensors"))
