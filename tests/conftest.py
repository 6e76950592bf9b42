"""Shared fixtures: one real local Ray per test session, started lazily and torn down at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Explicit everywhere (see DESIGN: Ray 2.60 turns token auth on for new local clusters).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.pop("RAY_ADDRESS", None)
for var in [v for v in os.environ if v.startswith("RS_") and "__" in v]:
    os.environ.pop(var)  # a developer's RS_* overrides must not leak into tests

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[dict[str, float]]:
    """A real local Ray sized for this 2-core machine; shared because each start costs ~7 s."""
    import ray

    # Socket paths must stay under 107 bytes: keep the temp dir short.
    temp_dir = tempfile.mkdtemp(prefix="rsray", dir="/tmp")
    ray.init(
        num_cpus=2,
        object_store_memory=256 * 1024 * 1024,
        include_dashboard=False,
        _temp_dir=temp_dir,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
