"""`rs data generate | inspect | validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs.cli.common import SetOpt

app = typer.Typer(help="Generate, inspect and validate phase-field HDF5 data.", no_args_is_help=True)

Layout = Annotated[str, typer.Option("--layout", help="auto, A (sim_* groups) or B (The Well)")]


@app.command()
def generate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Config with a data.generate section.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: data.root).")] = None,
    set_: SetOpt = None,
) -> None:
    """Simulate directional solidification and write train/val/test files of layout A."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rs.config import load_config
    from rs.data.generate.write import generate as run

    cfg = load_config(config, set_ or [])
    gen = cfg.data.generate
    target = out or cfg.data.root
    total = sum(gen.simulations) * gen.frames
    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("frames", total=total)
        summary = run(gen, target, cfg.data.fields, on_frame=lambda n: progress.advance(task, n))
    typer.echo(summary.line())


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="HDF5 file (layout A or B).")],
    png: Annotated[Path | None, typer.Option("--png", help="Write a φ/c montage PNG here.")] = None,
    sim: Annotated[int, typer.Option("--sim", help="Simulation index for the montage.")] = 0,
    layout: Layout = "auto",
) -> None:
    """Print layout, simulations, shapes, fields, attrs and value ranges; optionally a PNG montage."""
    from rs.data.inspect import describe, montage

    typer.echo(describe(file, layout))
    if png is not None:
        typer.echo(f"montage: {montage(file, png, layout, sim)}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="HDF5 files to check.")],
    layout: Layout = "auto",
) -> None:
    """Check structure, dtypes, ranks, finiteness, monotone times and shapes; exit 1 on any problem."""
    from rs.data.validate import validate as check

    problems = [p for f in files for p in check(f, layout)]
    for line in problems:
        typer.echo(line)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {len(files)} file(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {len(files)} file(s) valid")
