"""The `rs` command line: thin commands over the package; user errors are one line and exit 2."""

from __future__ import annotations

import sys

import typer

from rs.cli import (
    bench_cmd,
    catalog_cmd,
    cluster_cmd,
    config_cmd,
    data_cmd,
    eval_cmd,
    models_cmd,
    tracking_cmd,
    train_cmd,
    tune_cmd,
)
from rs.errors import RsError

app = typer.Typer(
    name="rs",
    help="Train and tune surrogate and diffusion models of phase-field solidification on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.command("train")(train_cmd.train)
app.command("eval")(eval_cmd.eval_)
app.command("tune")(tune_cmd.tune)
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(models_cmd.app, name="models")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(tracking_cmd.app, name="tracking")
app.add_typer(cluster_cmd.app, name="cluster")


def main() -> None:
    from rs.cluster.startup import pause_gc_during_imports

    pause_gc_during_imports()  # the commands import torch and Ray lazily, with collection paused
    try:
        app()
    except RsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
