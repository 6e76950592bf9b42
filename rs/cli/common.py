"""Options shared by several commands."""

from typing import Annotated

import typer

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field: dotted.path=value (YAML scalar); repeatable."),
]
