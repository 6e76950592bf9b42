"""`rs models list`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Model registries.", no_args_is_help=True)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False) -> None:
    """Each backbone's parameter count and forward FLOPs at 64² and 128² for the default widths."""
    from rs.models.summary import rows, table

    data = rows()
    typer.echo(json.dumps(data) if as_json else table(data))
