"""Warm and cold storage: per-run consolidation of hot files, and a partitioned Parquet catalog of runs.

hot  RUN_DIR/hot/<stream>/part-*.safetensors, scalars-*.jsonl   (many small files, written while running)
warm RUN_DIR/warm/<stream>.safetensors, <stream>.parquet        (one pair per stream: `consolidate`)
cold CATALOG/model_family=…/backbone=…/part-*.parquet           (one row per run, across runs: `build`)

`build` is idempotent: a run's row is keyed by its directory and the state of its outputs (latest
checkpoint, evaluation summary), and keys already in the catalog are skipped. `query` runs SQL (DuckDB)
over the view `runs`, or a bare filter as `SELECT * FROM runs WHERE <filter>`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from rs.errors import RsError

KEY_COLUMNS = ("run_key",)
PARTITIONS = ("model_family", "backbone")


def consolidate(run_dir: str | Path) -> dict[str, dict[str, int]]:
    """Merge every hot stream of a run into warm files (merging into earlier warm files); removes the hot
    files only after the warm ones are written. Returns {stream: {"tensors": n, "rows": n}}."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from safetensors.numpy import load_file, save_file

    run_dir = Path(run_dir)
    hot = run_dir / "hot"
    if not hot.is_dir():
        raise RsError(f"{run_dir}: no hot/ directory; nothing to consolidate (is this a run directory?)")
    warm = run_dir / "warm"
    warm.mkdir(exist_ok=True)
    out = {}
    for stream_dir in sorted(p for p in hot.iterdir() if p.is_dir()):
        stream = stream_dir.name
        parts = sorted(stream_dir.glob("part-*.safetensors"))
        jsonls = sorted(stream_dir.glob("scalars-*.jsonl"))
        tensors: dict[str, np.ndarray] = {}
        target = warm / f"{stream}.safetensors"
        if target.exists():
            tensors.update(load_file(str(target)))
        for p in parts:
            tensors.update(load_file(str(p)))
        if parts:
            _atomic(target, lambda tmp, t=tensors: save_file(t, str(tmp)))
        rows = [json.loads(line) for p in jsonls for line in p.read_text().splitlines() if line.strip()]
        table_path = warm / f"{stream}.parquet"
        if rows:
            table = pa.Table.from_pylist(rows)
            if table_path.exists():
                table = pa.concat_tables([pq.read_table(table_path), table], promote_options="default")
            _atomic(table_path, lambda tmp, t=table: pq.write_table(t, tmp))
        for p in [*parts, *jsonls]:
            p.unlink()
        out[stream] = {"tensors": len(tensors), "rows": pq.read_metadata(table_path).num_rows
                       if table_path.exists() else 0}
    return out


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)


def run_record(run_dir: Path) -> dict[str, Any]:
    """One catalog row from a run directory: descriptors, flattened config, final metrics, artifacts."""
    from rs.config import load_resolved, provenance

    cfg = load_resolved(run_dir / "config.resolved.yaml")
    ckpts = sorted((d for d in run_dir.glob("checkpoint_*") if (d / "meta.json").is_file()),
                   key=lambda d: json.loads((d / "meta.json").read_text())["epoch"])
    metrics = json.loads((ckpts[-1] / "meta.json").read_text())["metrics"] if ckpts else {}
    best = min((json.loads((d / "meta.json").read_text())["metrics"].get("val_rel_l2", np.inf) for d in ckpts),
               default=None)
    evals = sorted(run_dir.glob("eval/*/summary.json"))
    eval_summary = {p.parent.name: json.loads(p.read_text()) for p in evals}
    state = [c.name for c in ckpts] + [f"{p}:{p.stat().st_mtime_ns}" for p in evals]
    key = hashlib.sha256(json.dumps([str(run_dir.resolve()), state]).encode()).hexdigest()[:24]
    d = cfg.descriptors()
    return {
        "run_key": key, "run_dir": str(run_dir.resolve()), "run_name": cfg.train.run_name,
        "model_family": d["train.model_family"], "backbone": d["model.backbone"],
        "noise_schedule": d["diffusion.noise_schedule"], "timestep_sampler": d["diffusion.timestep_sampler"],
        "wavelet_weight": float(d["loss.weight_wavelet_loss"]), "region_selector": d["adaptive.region_selector"],
        "adaptive_resolution": bool(d["adaptive.enable_adaptive_resolution"]),
        "config": json.dumps({k: v["value"] for k, v in provenance(cfg).items()}, default=str),
        "epochs": int(metrics.get("epoch", -1)) + 1 if metrics else 0,
        "val_rel_l2": _f(metrics.get("val_rel_l2")), "best_val_rel_l2": _f(best),
        "train_loss": _f(metrics.get("train_loss")), "val_loss": _f(metrics.get("val_loss")),
        "eval": json.dumps(eval_summary), "checkpoints": [str(c) for c in ckpts],
        "plots": [str(p) for p in sorted(run_dir.glob("eval/*/plots/*.png"))],
        "recorded_at": time.time(),
    }


def _f(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v)


# Written by `rs train` when it creates a run directory, and never logged to a tracker: copies of a run's
# config.resolved.yaml (MLflow's artifact store under runs/mlartifacts, W&B's files) are not runs.
RUN_MARKER = "rs-run.json"


def is_run_dir(d: Path) -> bool:
    """What only a directory `rs train` wrote holds: its marker, or (runs from before the marker) the
    config beside a checkpoint Ray Train reported."""
    if not (d / "config.resolved.yaml").is_file():
        return False
    return (d / RUN_MARKER).is_file() or any(d.glob("checkpoint_*/meta.json"))


def find_runs(root: str | Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).rglob("config.resolved.yaml")
                  if not p.parent.name.startswith("checkpoint_") and is_run_dir(p.parent))


def existing_keys(catalog: str | Path) -> set[str]:
    import pyarrow.dataset as ds

    if not Path(catalog).exists() or not any(Path(catalog).rglob("*.parquet")):
        return set()
    return set(ds.dataset(str(catalog), format="parquet", partitioning="hive").to_table(columns=["run_key"])
               .column("run_key").to_pylist())


def write_records(records: list[dict[str, Any]], catalog: str | Path) -> int:
    """Append records whose key is not in the catalog yet; returns how many were added."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    have = existing_keys(catalog)
    fresh = [r for r in records if r["run_key"] not in have and not have.add(r["run_key"])]  # type: ignore[func-returns-value]
    if not fresh:
        return 0
    table = pa.Table.from_pylist(fresh)
    ds.write_dataset(table, str(catalog), format="parquet", partitioning=list(PARTITIONS),
                     partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore",
                     basename_template=f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}-{{i}}.parquet")
    return len(fresh)


def build(root: str | Path, catalog: str | Path) -> dict[str, int]:
    runs = find_runs(root)
    records = []
    for r in runs:
        try:
            records.append(run_record(r))
        except (RsError, OSError, KeyError, json.JSONDecodeError) as err:
            print(f"[rs] catalog: skipping {r}: {err}", flush=True)
    return {"runs": len(runs), "added": write_records(records, catalog)}


def query(catalog: str | Path, text: str) -> Any:
    """A pyarrow table: SQL over the view `runs`, or `SELECT * FROM runs WHERE <text>`."""
    import duckdb

    if not Path(catalog).exists():
        raise RsError(f"{catalog}: no catalog; build one with `rs catalog build ROOT --out {catalog}`")
    con = duckdb.connect()
    glob = str(Path(catalog) / "**" / "*.parquet").replace("'", "''")
    con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    sql = text if text.lstrip().split(None, 1)[0].lower() in ("select", "with", "describe", "summarize") \
        else f"SELECT * FROM runs WHERE {text}"
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as err:
        raise RsError(f"catalog query failed: {str(err).splitlines()[0]}") from None
