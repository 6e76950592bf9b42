"""`rs train CONFIG [--set …]`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rs.cli.common import SetOpt


def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML, e.g. configs/train/debug.yaml.")],
    set_: SetOpt = None,
) -> None:
    """Train on Ray Train (RAY_ADDRESS joins a cluster; otherwise a local Ray); reruns resume."""
    start = time.time()
    from rs.train.api import fit

    result = fit(config, set_ or [], start_time=start)
    best = result.best_metrics or result.metrics
    typer.echo(f"run directory: {result.run_dir}")
    typer.echo(f"best val_rel_l2: {best.get('val_rel_l2', float('nan')):.4g} (epoch {best.get('epoch')})")
    typer.echo(f"best checkpoint: {result.checkpoint}")
