"""Ray Data 2.60 workarounds (rs.data.ray_compat) change what a user sees: measured behaviour, not patching."""

from __future__ import annotations

import os
import time

import numpy as np


def test_a_fresh_execution_reads_in_parallel_from_its_first_task(ray_session):
    """Unpatched, each Ray Data execution plans its first second with 0 CPUs (its share of the cluster
    arrives asynchronously), so a short epoch's read tasks run one after another on a 2-CPU Ray."""
    import ray

    import rs.data.source  # noqa: F401  (applies the workaround, as every rs dataset does)
    from rs.data.ray_compat import wait_for_first_reservation

    assert wait_for_first_reservation()

    def _stamp(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # a local: pickled by value
        start = time.time()
        time.sleep(0.4)
        return {"pid": np.array([os.getpid()]), "start": np.array([start]), "end": np.array([time.time()])}

    def epoch() -> list[dict]:
        ds = ray.data.range(4, override_num_blocks=4).map_batches(_stamp, batch_size=None, num_cpus=1)
        return sorted(ds.take_all(), key=lambda r: r["start"])

    epoch()  # starts the worker processes: a cold worker's start-up is not what is tested
    rows = epoch()
    first, second = rows[0], rows[1]
    assert second["start"] < first["end"], f"the first two tasks ran one after another: {rows}"
    assert first["pid"] != second["pid"]

