"""MLflow through `MlflowClient` only (no fluent active-run state: several processes share one run)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rs.tracking.record import MlflowRecord

# A dead server must cost seconds, not MLflow's default minutes of retries, before training moves on.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

BATCH = 100  # MLflow's limit of params (and tags) per log_batch


def _str(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


class MlflowBackend:
    name = "mlflow"

    def __init__(self, rec: MlflowRecord):
        from mlflow import MlflowClient

        self.rec = rec
        self.client = MlflowClient(tracking_uri=rec.uri)

    def ensure_run(self, tags: dict[str, str]) -> str:
        """The pipeline's run, created on first need (and its id written back by the caller)."""
        if self.rec.run_id:
            return self.rec.run_id
        exp = self.client.get_experiment_by_name(self.rec.experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(
            self.rec.experiment, artifact_location=self.rec.artifact_location)
        all_tags = dict(tags)
        if self.rec.parent_run_id:
            all_tags["mlflow.parentRunId"] = self.rec.parent_run_id
        run = self.client.create_run(exp_id, run_name=self.rec.run_name, tags=all_tags)
        self.rec.run_id = run.info.run_id
        return self.rec.run_id

    def warm(self) -> None:
        """Open the store now (a sqlite store checks its schema, a server answers its first request)."""
        if self.rec.run_id:
            self.client.get_run(self.rec.run_id)

    def reopen(self) -> None:
        """A resumed pipeline marks its run running again."""
        if self.rec.run_id:
            self.client.update_run(self.rec.run_id, status="RUNNING")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, ts: int | None = None) -> None:
        from mlflow.entities import Metric

        ts = ts or int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.rec.run_id, metrics=items[i : i + 1000], synchronous=True)

    def log_summary(self, values: dict[str, float], ts: int | None = None) -> None:
        # Final values: logged once, no step, so MLflow shows them as numbers rather than charts.
        self.log_metrics(values, None, ts)

    def log_params(self, params: dict[str, Any]) -> None:
        """MLflow params are write-once: a resumed run whose config changed (say, more epochs) keeps the
        first value and records the change as a tag `rs.changed.<key>` = "old -> new"."""
        from mlflow.entities import Param

        logged = self.client.get_run(self.rec.run_id).data.params
        values = {k[:250]: _str(v)[:6000] for k, v in params.items()}
        changed = {f"rs.changed.{k}": f"{logged[k]} -> {v}" for k, v in values.items()
                   if k in logged and logged[k] != v}
        if changed:
            self.set_tags(changed)
        items = [Param(k, v) for k, v in values.items() if k not in logged]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.rec.run_id, params=items[i : i + BATCH], synchronous=True)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, _str(v)[:5000]) for k, v in tags.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.rec.run_id, tags=items[i : i + BATCH], synchronous=True)

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        self.client.log_dict(self.rec.run_id, {"columns": columns, "data": [[r.get(c) for c in columns] for r in rows]},
                             f"tables/{name}.json")

    def log_file(self, path: str, dest: str | None = None) -> None:
        p = Path(path)
        if p.is_dir():
            self.client.log_artifacts(self.rec.run_id, str(p), dest or p.name)
        else:
            self.client.log_artifact(self.rec.run_id, str(p), dest)

    def log_image(self, path: str, name: str) -> None:
        self.log_file(path, "plots")

    def close(self, status: str | None) -> None:
        if status and self.rec.run_id:
            self.client.set_terminated(self.rec.run_id, status)

    # -- replay support -------------------------------------------------------------------------------
    def history(self, key: str) -> set[tuple[int, float]]:
        return {(m.step, m.value) for m in self.client.get_metric_history(self.rec.run_id, key)}
