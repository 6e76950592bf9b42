"""The environment every Ray process of a run needs, set before Ray reads it."""

from __future__ import annotations

import os
import sys

IDLE_WORKER_KEEP_MS = 60_000


def apply_ray_env(auth_mode: str = "token") -> None:
    """RAY_AUTH_MODE explicitly (a user's explicit value wins), HDF5 locking off for parallel filesystems.

    Ray reads RAY_AUTH_MODE into its config when it is imported; if it already was (a notebook), the config
    is refreshed the way Ray itself does when it enables token auth.
    """
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Read it for Ray processes started from here. A raylet kills idle workers above its soft limit (one per
    # CPU) after 1 s; Train's workers and actors keep it above that, so the read workers of every epoch were
    # killed during validation and restarted (about 1 s per epoch for the train and each val dataset).
    os.environ.setdefault("RAY_idle_worker_killing_time_threshold_ms", str(IDLE_WORKER_KEEP_MS))
    if os.environ.get("RAY_AUTH_MODE") is None:
        os.environ["RAY_AUTH_MODE"] = auth_mode
        if "ray._raylet" in sys.modules:
            from ray._raylet import Config

            Config.initialize("")
