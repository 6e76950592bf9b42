"""`rs tracking sync|show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Experiment tracking (MLflow, W&B) of run directories.", no_args_is_help=True)


@app.command("sync")
def sync(run_dir: Annotated[Path, typer.Argument(help="Run directory (holds tracking.json).")]) -> None:
    """Replay events buffered while a tracking server was unreachable; safe to run again."""
    from rs.tracking import sync as do_sync

    sent = do_sync(run_dir)
    if not sent:
        typer.echo(f"{run_dir}: nothing buffered")


@app.command("show")
def show(run_dir: Annotated[Path, typer.Argument(help="Run directory (holds tracking.json).")],
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The runs a run directory logs into, buffered events, and its W&B offline data."""
    from dataclasses import asdict

    from rs.tracking import Record
    from rs.tracking.buffer import Buffer
    from rs.tracking.wandb_offline import read_run

    rec = Record.load(run_dir)
    out = asdict(rec)
    out["pending"] = {n: len(Buffer(run_dir, n).events()) for n in ("mlflow",)}
    if rec.wandb and rec.wandb.mode == "offline":
        w = read_run(rec.wandb.dir, rec.wandb.id)
        out["wandb_offline"] = {"segments": w["segments"], "history_rows": len(w["history"]),
                                "summary": {k: v for k, v in w["summary"].items() if not k.startswith("_")}}
    typer.echo(json.dumps(out, indent=1, default=str) if as_json else _text(out))


def _text(out: dict) -> str:
    lines = [f"run dir   {out['run_dir']} ({out['kind']})"]
    if m := out.get("mlflow"):
        lines.append(f"mlflow    {m['uri']} experiment {m['experiment']} run {m['run_id'] or '(not created yet)'}")
    if w := out.get("wandb"):
        lines.append(f"wandb     {w['mode']} {w['entity'] or ''}/{w['project']} run {w['id']} dir {w['dir']}")
    lines.append(f"buffered  {out['pending']}")
    if wo := out.get("wandb_offline"):
        lines.append(f"wandb offline: {wo['segments']} segment(s), {wo['history_rows']} history rows, "
                     f"summary {wo['summary']}")
    return "\n".join(lines)
