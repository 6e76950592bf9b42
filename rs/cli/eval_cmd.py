"""`rs eval --checkpoint PATH [--split test] [--set …]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rs.cli.common import SetOpt


def eval_(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="RUN_DIR/checkpoint_* directory.")],
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: eval.split).")] = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Autoregressive rollouts against ground truth, beside persistence; metrics, plots, tracking."""
    from rs.eval import evaluate, format_table

    result = evaluate(checkpoint, set_ or [], split=split)
    if as_json:
        typer.echo(json.dumps(result.summary))
        return
    typer.echo(format_table(result))
    typer.echo(f"summary: {result.out_dir / 'summary.json'}")
    typer.echo(f"plots:   {result.out_dir / 'plots'}")
