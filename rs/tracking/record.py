"""`tracking.json`: which MLflow and W&B runs a pipeline logs into, shared by every process of it.

The driver decides once (gating by environment and config) and writes the record into the run directory;
Ray workers, restarts, `rs eval` and `ray job submit` jobs read it back (its path also travels in
`RS_TRACKING_CONTEXT`), so one pipeline is one MLflow run and one W&B run.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rs.config import ExperimentConfig
from rs.errors import RsError

FILE = "tracking.json"
ENV = "RS_TRACKING_CONTEXT"  # path of a tracking.json, for subprocesses and submitted jobs
FORMAT = "rs-tracking-1"


@dataclass
class MlflowRecord:
    uri: str
    experiment: str
    run_name: str
    run_id: str | None = None  # None until the run exists (the server was down at start: sync creates it)
    parent_run_id: str | None = None
    artifact_location: str | None = None


@dataclass
class WandbRecord:
    mode: str  # offline | online
    project: str
    entity: str | None
    id: str
    name: str
    group: str | None = None
    dir: str = ""


@dataclass
class Record:
    run_dir: str
    kind: str  # train | tune | eval
    mlflow: MlflowRecord | None = None
    wandb: WandbRecord | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / FILE

    def save(self) -> Path:
        data = {"format": FORMAT, **asdict(self)}
        tmp = self.path.with_suffix(".json.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> Record:
        p = Path(path)
        p = p / FILE if p.is_dir() else p
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise RsError(f"{p}: no tracking record; was the run started with tracking on?") from None
        except json.JSONDecodeError as err:
            raise RsError(f"{p}: unreadable tracking record ({err}); delete it to start new tracking runs") from None
        if data.pop("format", None) != FORMAT:
            raise RsError(f"{p}: not an rs tracking record (format {FORMAT} expected)")
        ml, wb = data.pop("mlflow", None), data.pop("wandb", None)
        return cls(**data, mlflow=MlflowRecord(**ml) if ml else None, wandb=WandbRecord(**wb) if wb else None)


def mlflow_uri(cfg: ExperimentConfig) -> str | None:
    """MLFLOW_TRACKING_URI wins, then tracking.mlflow.uri, then the local sqlite store when switched on."""
    m = cfg.tracking.mlflow
    uri = os.environ.get("MLFLOW_TRACKING_URI") or m.uri
    if uri:
        return uri
    if m.local:
        return f"sqlite:///{Path(cfg.train.storage_path).resolve() / 'mlflow.db'}"
    return None


def wandb_mode(cfg: ExperimentConfig) -> str | None:
    mode = (os.environ.get("WANDB_MODE") or cfg.tracking.wandb.mode).lower()
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise RsError(f"WANDB_MODE={mode!r}: use online, offline or disabled")
    return None if mode == "disabled" else mode


def new_record(cfg: ExperimentConfig, run_dir: Path, kind: str, name: str, tags: dict[str, str],
               group: str | None = None, parent_run_id: str | None = None) -> Record:
    rec = Record(run_dir=str(run_dir), kind=kind, tags=tags)
    if uri := mlflow_uri(cfg):
        local = uri.startswith("sqlite:")
        rec.mlflow = MlflowRecord(
            uri=uri, experiment=cfg.tracking.mlflow.experiment, run_name=name, parent_run_id=parent_run_id,
            artifact_location=str(Path(cfg.train.storage_path).resolve() / "mlartifacts") if local else None)
    if mode := wandb_mode(cfg):
        w = cfg.tracking.wandb
        rec.wandb = WandbRecord(mode=mode, project=w.project, entity=w.entity, id=secrets.token_hex(4),
                                name=name, group=group, dir=str(run_dir))
    return rec
