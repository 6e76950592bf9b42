"""Faster process start: no garbage collection while a process imports torch, Ray Train and rs.

Importing them creates ~300k long-lived objects, and CPython 3.11 runs a full collection over all of them
every few thousand allocations: 0.6-0.9 s of a 4.5-5.5 s import on 2 cores, in every Ray worker that
imports torch (Train controller, workers, split coordinator) and in the driver. `pause_gc_during_imports`
turns collection off until the process has imported nothing new for `quiet_s`, then freezes what is alive
(the modules: later full collections skip them; 0.34 s a collection before, ~0 after) and turns it back on.
A Ray worker runs it as its process setup hook (`hook_env`: a local Ray started by
`rs.train.api.ensure_ray`, and the Slurm templates' `ray start`).

`warm_data_worker` starts the process of a training run's first read early, in the environment Ray Train
gives its split coordinator.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Any

WORKER_HOOK = "rs.cluster.startup.worker_setup"
_started = False


def pause_gc_during_imports(quiet_s: float = 1.0, max_s: float = 60.0, poll_s: float = 0.25) -> None:
    """Collection off now; back on (after `gc.freeze()`) once `sys.modules` has not grown for `quiet_s`, or
    after `max_s` at the latest. Cyclic garbage of the paused seconds is frozen with the rest (~9k objects,
    no measurable memory after importing torch, Ray Train and rs). Idempotent within a process."""
    global _started
    if _started or not gc.isenabled():  # already paused here, or the user runs without collection
        return
    _started = True
    gc.disable()

    def resume() -> None:
        t0 = last_change = time.monotonic()
        n = len(sys.modules)
        while time.monotonic() - t0 < max_s:
            time.sleep(poll_s)
            if len(sys.modules) != n:
                n, last_change = len(sys.modules), time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                break
        gc.freeze()
        gc.enable()

    threading.Thread(target=resume, name="rs-gc-resume", daemon=True).start()


def worker_setup() -> None:
    """The process setup hook of every Ray worker on a node whose Ray rs started."""
    pause_gc_during_imports()


def hook_env(enabled: bool) -> dict[str, str]:
    """Environment that makes every worker a raylet starts run `worker_setup`: for the processes that start
    Ray (a local `ray.init`, `ray start` in the Slurm templates). Ray 2.60 implements the documented
    `runtime_env={"worker_process_setup_hook": ...}` with this very variable, but a job `runtime_env` costs
    more than it saves here: no task of the job can then take a worker the raylet prestarted with the empty
    environment (measured: first step 43.3 s against 44.5 s without the hook; 37.3 s against 42.4 s with
    this variable, four alternating pairs on a slow day)."""
    if not enabled:
        return {}
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

    return {WORKER_PROCESS_SETUP_HOOK_ENV_VAR: WORKER_HOOK}


def train_env_vars() -> dict[str, str] | None:
    """The `env_vars` of Ray Train V2's controller, and so of every process it starts that is not a training
    worker (its dataset manager, the split coordinator, their Ray Data read tasks); None where Ray differs."""
    try:
        from ray._common.constants import RAY_WARN_BLOCKING_GET_INSIDE_ASYNC_ENV_VAR as WARN
        from ray.train.v2._internal.constants import DEFAULT_RAY_WARN_BLOCKING_GET_INSIDE_ASYNC_VALUE as DEFAULT
        from ray.train.v2._internal.constants import get_env_vars_to_propagate
    except ImportError:
        return None
    env = get_env_vars_to_propagate()
    env.setdefault(WARN, DEFAULT)
    return env


def _import_reader() -> int:
    import os

    import rs.data.source  # noqa: F401  (h5py, Arrow, Ray Data: what a read task needs first)

    return os.getpid()


def warm_data_worker() -> Any:
    """Start one worker process in the environment Train's split coordinator reads in, with the reader
    imported, left idle. The coordinator's read tasks inherit the controller's `runtime_env`, so they never
    take a process the job started with its own; without one ready, the first epoch's first read waits for a
    process to start and import (~2 s on 2 cores, on the path to the first step). Started while the driver
    plans the splits, when one core is idle. Returns the task's ref (it gives the process id), or None where
    Ray differs."""
    env = train_env_vars()
    if env is None:
        return None
    import ray

    return ray.remote(num_cpus=0)(_import_reader).options(runtime_env={"env_vars": env}).remote()
