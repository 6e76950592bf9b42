"""`rs tune CONFIG [--set …]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs.cli.common import SetOpt


def tune(
    config: Annotated[Path, typer.Argument(help="Experiment YAML with tune.space, e.g. configs/tune/debug.yaml.")],
    set_: SetOpt = None,
) -> None:
    """Sweep with Ray Tune (OptunaSearch + ASHA on val_rel_l2); rerunning resumes the sweep."""
    from rs.tune.run import format_leaderboard, sweep

    result = sweep(config, set_ or [])
    typer.echo(format_leaderboard(result.leaderboard))
    typer.echo(f"sweep directory: {result.sweep_dir}")
    if result.best_config:
        typer.echo(f"best config: {result.best_config}  (train it: rs train {result.best_config})")
