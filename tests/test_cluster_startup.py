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
