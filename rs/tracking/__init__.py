"""Experiment tracking (MLflow, W&B): the only package that imports either. See `context`."""

from rs.tracking.context import OpeningRun, TrackingContext, attach, descriptor_tags, open_run, sync
from rs.tracking.record import ENV, Record

__all__ = ["ENV", "OpeningRun", "Record", "TrackingContext", "attach", "descriptor_tags", "open_run", "sync"]
