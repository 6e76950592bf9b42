"""Workarounds for Ray Data 2.60 behaviour that costs this pipeline throughput, each measured and guarded.

Cold start with zero resources: every Ray Data execution (each epoch of a Train shard is one) asks a
cluster-wide coordinator actor for its share of the cluster through a non-blocking client whose first
answer is the empty cache, and the executor refreshes its limits only once a second. So each execution
spends its first second with limits of 0 CPU, admitting one read task at a time; an epoch that lasts a few
seconds reads mostly on one core (measured: all read tasks of a 0.4 s epoch ran in one worker process).
The patch waits, once per execution and at most `FIRST_ANSWER_TIMEOUT_S`, for the coordinator's first
answer, which the coordinator computes as soon as the execution registers.

Applied when `rs.data.source` is imported: in the driver and in every process that unpickles one of its
datasets (Ray Train's split coordinator), so no caller has to remember it.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
FIRST_ANSWER_TIMEOUT_S = 2.0
_applied = False


def wait_for_first_reservation() -> bool:
    """Make the coordinator client's first `get_reserved_resources` wait for the real answer.

    Returns whether the patch is in place (False where Ray's internals differ from 2.60's: left alone)."""
    global _applied
    if _applied:
        return True
    try:
        import ray
        from ray.data._internal.cluster_autoscaler import default_autoscaling_coordinator as dac
    except ImportError:
        return False
    cls = getattr(dac, "DefaultAutoscalingCoordinator", None)
    original = getattr(cls, "get_reserved_resources", None)
    if original is None or not hasattr(cls, "__init__"):
        log.debug("Ray Data has no DefaultAutoscalingCoordinator.get_reserved_resources; not patched")
        return False

    def get_reserved_resources(self: Any) -> Any:
        reserved = original(self)
        pending = getattr(self, "_pending_reserved_resources", None)
        if not reserved and pending is not None and not getattr(self, "_rs_waited", False):
            self._rs_waited = True
            ray.wait([pending], timeout=FIRST_ANSWER_TIMEOUT_S)
            reserved = original(self)
        return reserved

    get_reserved_resources.__wrapped__ = original  # type: ignore[attr-defined]
    cls.get_reserved_resources = get_reserved_resources
    _applied = True
    return True
