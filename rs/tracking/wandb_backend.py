"""Weights & Biases: one run id per pipeline; each process that logs continues it (`resume="allow"`).

Offline mode needs no account: W&B writes `RUN_DIR/wandb/offline-run-*-ID/` and `wandb sync` uploads it
later (each process's segment merges into the one run). Online mode that cannot start (no API key, no
network) falls back to offline in the same directory, with one warning: W&B's own buffer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rs.tracking.record import WandbRecord

log = logging.getLogger(__name__)


class WandbBackend:
    name = "wandb"

    def __init__(self, rec: WandbRecord, config: dict[str, Any] | None = None, tags: dict[str, str] | None = None):
        self.rec = rec
        self.config = config or {}
        self.tags = tags or {}
        self._run: Any = None

    @property
    def run(self) -> Any:
        if self._run is None:
            self._run = self._init(self.rec.mode)
        return self._run

    def _init(self, mode: str) -> Any:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        Path(self.rec.dir).mkdir(parents=True, exist_ok=True)
        kwargs = dict(project=self.rec.project, entity=self.rec.entity, id=self.rec.id, name=self.rec.name,
                      group=self.rec.group, dir=self.rec.dir, resume="allow", config=self.config or None,
                      tags=[f"{k}={v}"[:64] for k, v in self.tags.items()] or None, reinit="create_new",
                      settings=wandb.Settings(console="off", x_disable_stats=True))
        try:
            return wandb.init(mode=mode, **kwargs)
        except Exception as err:
            if mode != "online":
                raise
            log.warning("W&B online failed to start (%s); logging offline to %s (upload later with `wandb sync`)",
                        err, self.rec.dir)
            return wandb.init(mode="offline", **kwargs)

    def ensure_run(self, tags: dict[str, str]) -> str:
        return self.rec.id

    def reopen(self) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, ts: int | None = None) -> None:
        # W&B's own step must only grow, which a resumed segment cannot promise: ours travels as a field.
        self.run.log({**metrics, **({"step": step} if step is not None and "step" not in metrics else {})})

    def log_summary(self, values: dict[str, float], ts: int | None = None) -> None:
        self.run.summary.update(values)

    def log_params(self, params: dict[str, Any]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.run.tags = tuple(dict.fromkeys([*self.run.tags, *(f"{k}={v}"[:64] for k, v in tags.items())]))

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        import wandb

        columns = list(dict.fromkeys(k for r in rows for k in r))
        self.run.log({name: wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])})

    def log_file(self, path: str, dest: str | None = None) -> None:
        import wandb

        p = Path(path)
        kind = "model" if p.is_dir() else "file"
        art = wandb.Artifact(f"{self.rec.name}-{dest or p.name}".replace("/", "-")[:128], type=kind)
        if p.is_dir():
            art.add_dir(str(p))
        else:
            art.add_file(str(p))
        self.run.log_artifact(art)

    def log_image(self, path: str, name: str) -> None:
        import wandb

        self.run.log({name: wandb.Image(str(path))})

    def close(self, status: str | None) -> None:
        if self._run is not None:
            self._run.finish(exit_code=0 if status in (None, "FINISHED") else 1)
            self._run = None
