"""The environment every Ray process of a run needs, set before Ray reads it."""

from __future__ import annotations

import os

IDLE_WORKER_KEEP_MS = 60_000


def apply_ray_env() -> None:
    """HDF5 locking off for parallel filesystems, no usage stats, idle workers kept; a user's value wins.
    Authentication is `rs.cluster.auth`'s: it differs between starting Ray and joining a cluster."""
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Read it for Ray processes started from here. A raylet kills idle workers above its soft limit (one per
    # CPU) after 1 s; Train's workers and actors keep it above that, so the read workers of every epoch were
    # killed during validation and restarted (about 1 s per epoch for the train and each val dataset).
    os.environ.setdefault("RAY_idle_worker_killing_time_threshold_ms", str(IDLE_WORKER_KEEP_MS))
