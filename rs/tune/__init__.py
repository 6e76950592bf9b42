"""Sweeps on Ray Tune: `rs.tune.sweep(config, overrides)`; see `rs.tune.run`."""

from rs.tune.run import SweepResult, sweep

__all__ = ["SweepResult", "sweep"]
