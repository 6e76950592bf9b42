"""`rs config show | schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rs.cli.common import SetOpt

app = typer.Typer(help="Inspect the typed experiment config.", no_args_is_help=True)


@app.command()
def show(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (may `extends:` a base).")],
    set_: SetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, yaml or json")] = "table",
) -> None:
    """Print the resolved config: every field's value and where it came from."""
    from rs.config import load_config
    from rs.config.describe import show_table
    from rs.config.serialize import to_json, to_yaml

    cfg = load_config(config, set_ or [])
    out = {"table": show_table, "yaml": to_yaml, "json": to_json}.get(fmt)
    if out is None:
        raise typer.BadParameter("choose table, yaml or json", param_hint="--format")
    typer.echo(out(cfg))


@app.command()
def schema(
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Print every field: type, default, bounds or choices, unit and doc."""
    from rs.config.describe import schema_rows, schema_table

    if fmt == "json":
        typer.echo(json.dumps(schema_rows(), indent=1, default=str, ensure_ascii=False))
    else:
        typer.echo(schema_table())
