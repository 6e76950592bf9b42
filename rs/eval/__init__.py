"""Evaluation: rollouts, phase-field metrics, plots. `rs.evaluate(checkpoint, …)` is the Python API."""

from rs.eval.run import EvalResult, evaluate, format_table

__all__ = ["EvalResult", "evaluate", "format_table"]
