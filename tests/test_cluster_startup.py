"""`rs.cluster.startup`: garbage collection paused while a process imports, then frozen and back on."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, json, sys, time
from rs.cluster import startup
startup.pause_gc_during_imports(quiet_s=0.5, poll_s=0.05)
paused = not gc.isenabled()
startup.pause_gc_during_imports()  # a second call in the same process changes nothing
import email.mime.text, xml.dom.minidom  # imports keep it paused
still_paused = not gc.isenabled()
deadline = time.monotonic() + 10
while not gc.isenabled() and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"paused": paused, "still_paused": still_paused, "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "threads": [t.name for t in __import__("threading").enumerate()]}))
"""


def test_collection_is_paused_during_imports_then_frozen_and_resumed():
    import json

    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["paused"] and got["still_paused"]
    assert got["enabled"], "collection must come back on once imports are quiet"
    assert got["frozen"] > 1000  # what was imported is frozen, so later full collections skip it
    assert "rs-gc-resume" not in got["threads"]  # the resume thread has finished


def test_a_process_that_runs_without_collection_is_left_so():
    child = ("import gc; gc.disable(); from rs.cluster import startup; startup.pause_gc_during_imports(quiet_s=0.1);"
             " import time; time.sleep(0.6); print(gc.isenabled(), gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "0"]


def test_slurm_templates_export_the_hook_unless_turned_off(tmp_path):
    from rs.cluster import slurm
    from rs.cluster.startup import WORKER_HOOK

    spec = slurm.SlurmSpec(workdir=tmp_path, state_dir=tmp_path / "s")
    assert f"={WORKER_HOOK}\n" in slurm.render(spec)
    spec.fast_worker_start = False
    assert WORKER_HOOK not in slurm.render(spec)


WARM_PROBE = '''
def record(batch):  # a Ray Data task of the split coordinator: which process, and was the reader imported?
    import os, sys
    import numpy as np
    n = len(batch["id"])
    return {"pid": np.full(n, os.getpid()), "warm": np.full(n, "rs.data.source" in sys.modules)}

def loop(config):
    import json, ray.train
    rows = [(int(p), bool(w)) for b in ray.train.get_dataset_shard("train").iter_batches(batch_size=None)
            for p, w in zip(b["pid"], b["warm"])]
    with open(config["out"], "w") as fh:
        json.dump(rows, fh)
'''


def test_first_read_of_a_train_run_takes_the_warmed_process(ray_session, tmp_path, monkeypatch):
    """The warmed process has exactly the environment Train gives its split coordinator's reads, so the
    first read runs in it, with the reader already imported."""
    import json

    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from rs.cluster.startup import train_env_vars, warm_data_worker

    # A value Train propagates to its controller: this test's environment then matches no idle process left
    # by earlier tests, only the one warmed here.
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "1.75")
    assert train_env_vars()["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "1.75"
    ref = warm_data_worker()
    assert ref is not None
    warm_pid = ray.get(ref, timeout=120)
    ns: dict = {}
    exec(WARM_PROBE, ns)  # plain functions, shipped to the workers by value
    ds = ray.data.range(8, override_num_blocks=1).map_batches(ns["record"])
    TorchTrainer(ns["loop"], train_loop_config={"out": str(tmp_path / "rows.json")},
                 scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 0.5}),
                 datasets={"train": ds}, run_config=RunConfig(name="warm", storage_path=str(tmp_path / "runs"))
                 ).fit()
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert len(rows) == 8
    assert {pid for pid, _ in rows} == {warm_pid}, "the read ran in a new process, not the warmed one"
    assert all(warm for _, warm in rows)
