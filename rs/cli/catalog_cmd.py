"""`rs catalog consolidate|build|query`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run storage: warm per-run files and a Parquet catalog across runs.", no_args_is_help=True)


@app.command()
def consolidate(run_dir: Annotated[Path, typer.Argument(help="Run directory with hot/ outputs.")]) -> None:
    """Merge a run's hot files (safetensors parts, jsonl scalars) into warm per-stream files."""
    from rs.io.catalog import consolidate as do

    for stream, counts in do(run_dir).items():
        typer.echo(f"{stream}: {counts['tensors']} tensors, {counts['rows']} scalar rows -> {run_dir / 'warm'}")


@app.command()
def build(
    root: Annotated[Path, typer.Argument(help="Directory searched for run directories.")],
    out: Annotated[Path, typer.Option("--out", help="Catalog directory (partitioned Parquet).")],
) -> None:
    """Append every run's descriptors, config, final metrics and artifacts; re-running adds nothing twice."""
    from rs.io.catalog import build as do

    r = do(root, out)
    typer.echo(f"{r['runs']} run(s) found, {r['added']} added to {out}")


@app.command()
def query(
    catalog: Annotated[Path, typer.Argument(help="Catalog directory.")],
    text: Annotated[str, typer.Argument(help="SQL over the view `runs`, or a filter (WHERE clause).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """E.g. "SELECT backbone, noise_schedule, min(best_val_rel_l2) FROM runs GROUP BY ALL"."""
    from rs.io.catalog import query as do

    table = do(catalog, text)
    if as_json:
        typer.echo(json.dumps(table.to_pylist(), default=str))
        return
    rows = table.to_pylist()
    cols = table.column_names
    width = {c: min(40, max(len(c), *(len(_cell(r[c])) for r in rows))) if rows else len(c) for c in cols}
    typer.echo("  ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        typer.echo("  ".join(_cell(r[c])[: width[c]].ljust(width[c]) for c in cols))


def _cell(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
