"""The tracking context: one object that train, tune and eval log through, by data type.

`open_run` (the pipeline's driver) gates backends by environment and config, creates or continues the
runs recorded in `RUN_DIR/tracking.json`, and returns a context; `attach` gives another process of the
same pipeline (a Ray worker, a submitted job) a context on those runs. With no backend on, every method
is a no-op. A backend that fails is never fatal: one warning, then its events go to the local buffer
(`rs.tracking.buffer`) until `rs tracking sync RUN_DIR` replays them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from rs.config import ExperimentConfig, provenance
from rs.tracking import buffer as buf
from rs.tracking.record import ENV, Record, new_record

log = logging.getLogger(__name__)


class TrackingContext:
    """Time series, summary scalars, params, tags, tables, images and files, to every live backend."""

    def __init__(self, record: Record | None, config: dict[str, Any] | None = None, *, background: bool = False):
        """`background` connects in a thread, joined at the first event: importing MLflow and opening its
        store take seconds that a worker's first optimizer step need not wait for."""
        self.record = record
        self._config = config
        self._backends: list[Any] = []
        self._connecting: threading.Thread | None = None
        self._connect_error: BaseException | None = None
        if record is None:
            return
        if background:
            self._connecting = threading.Thread(target=self._connect_and_warm, daemon=True, name="rs-tracking")
            self._connecting.start()
        else:
            self._connect()

    def _connect(self) -> None:
        assert self.record is not None
        if self.record.mlflow is not None:
            from rs.tracking.mlflow_backend import MlflowBackend

            self._backends.append(MlflowBackend(self.record.mlflow))
        if self.record.wandb is not None:
            from rs.tracking.wandb_backend import WandbBackend

            self._backends.append(WandbBackend(self.record.wandb, self._config, self.record.tags))

    def _connect_and_warm(self) -> None:
        try:
            self._connect()
        except BaseException as err:  # raised where the backends are first needed, as without the thread
            self._connect_error = err
            return
        for b in self._backends:
            with contextlib.suppress(Exception):  # an unreachable backend is handled (buffered) at first use
                getattr(b, "warm", lambda: None)()

    @property
    def backends(self) -> list[Any]:
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
            if self._connect_error is not None:
                err, self._connect_error = self._connect_error, None
                raise err
        return self._backends

    @property
    def enabled(self) -> bool:
        r = self.record
        return r is not None and (r.mlflow is not None or r.wandb is not None)

    @property
    def run_ids(self) -> dict[str, str | None]:
        r = self.record
        return {"mlflow": r.mlflow.run_id if r and r.mlflow else None, "wandb": r.wandb.id if r and r.wandb else None}

    def _call(self, op: str, **args: Any) -> None:
        assert self.record is not None
        for b in self.backends:
            buffer = buf.Buffer(self.record.run_dir, b.name)
            if buffer.down or (b.name == "mlflow" and not b.rec.run_id and op != "close"):
                buffer.append(op, args)
                continue
            try:
                getattr(b, op)(**args)
            except Exception as err:  # tracking is never fatal
                reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
                if buffer.mark_down(reason):
                    log.warning("tracking: %s failed (%s); training goes on, events are buffered in %s - replay "
                                "them with `rs tracking sync %s`", b.name, reason, buffer.pending, self.record.run_dir)
                    print(f"[rs] warning: tracking backend {b.name} unreachable ({reason}); buffering to "
                          f"{buffer.pending}; replay with `rs tracking sync {self.record.run_dir}`", flush=True)
                if op != "close":
                    buffer.append(op, args)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """One point of each time series (per epoch or per step)."""
        if self.enabled:
            self._call("log_metrics", metrics={k: float(v) for k, v in metrics.items()}, step=step)

    def log_summary(self, values: dict[str, float]) -> None:
        """Final scalars (W&B summary, MLflow final metrics)."""
        if self.enabled:
            self._call("log_summary", values={k: float(v) for k, v in values.items()})

    def log_params(self, params: dict[str, Any]) -> None:
        if self.enabled:
            self._call("log_params", params=params)

    def log_config(self, cfg: ExperimentConfig) -> None:
        """The flattened resolved config as params."""
        self.log_params({k: v["value"] for k, v in provenance(cfg).items()})

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled:
            self._call("set_tags", tags={k: str(v) for k, v in tags.items()})

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        if self.enabled:
            self._call("log_table", name=name, rows=rows)

    def log_image(self, path: str | Path, name: str | None = None) -> None:
        if self.enabled:
            self._call("log_image", path=str(path), name=name or Path(path).stem)

    def log_file(self, path: str | Path, dest: str | None = None) -> None:
        """A file or a directory (a checkpoint) as artifacts."""
        if self.enabled:
            self._call("log_file", path=str(path), dest=dest)

    def close(self, status: str | None = None) -> None:
        """End this process's part; `status` (FINISHED/FAILED/KILLED) ends the pipeline's runs."""
        if self.enabled:
            self._call("close", status=status)

    def __enter__(self) -> TrackingContext:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.close(None)


def descriptor_tags(cfg: ExperimentConfig, kind: str) -> dict[str, str]:
    import rs

    tags = {k: str(v) for k, v in cfg.descriptors().items()}
    tags.update({"rs.kind": kind, "rs.version": rs.__version__, "rs.config": cfg.name,
                 "rs.git_commit": git_commit(), "rs.data_fingerprint": data_fingerprint(cfg)})
    return tags


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_fingerprint(cfg: ExperimentConfig) -> str:
    """Names, sizes and mtimes of the data root's files: cheap, and changes when the data does."""
    import hashlib

    root = Path(cfg.data.root)
    if not root.exists():
        return "missing"
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".h5", ".hdf5", ".json"):
            st = p.stat()
            h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def open_run(cfg: ExperimentConfig, run_dir: Path, kind: str = "train", *, name: str | None = None,
             group: str | None = None, parent_run_id: str | None = None, export_env: bool = True) -> TrackingContext:
    """The driver's context: continue the runs in `run_dir/tracking.json`, or start them; `export_env` puts
    the record's path in $RS_TRACKING_CONTEXT for subprocesses."""
    run_dir = Path(run_dir)
    tags = descriptor_tags(cfg, kind)
    existing = (run_dir / "tracking.json").exists()
    record = (Record.load(run_dir) if existing else
              new_record(cfg, run_dir, kind, name or cfg.train.run_name or cfg.name, tags, group, parent_run_id))
    if record.mlflow is None and record.wandb is None:
        return TrackingContext(None)
    record.tags = tags
    _flush_pending(record)
    ctx = TrackingContext(record, {k: v["value"] for k, v in provenance(cfg).items()})
    for b in ctx.backends:
        buffer = buf.Buffer(record.run_dir, b.name)
        if buffer.down:
            continue
        try:
            fresh = b.ensure_run(tags) if b.name == "mlflow" and not b.rec.run_id else None
            if existing and not fresh:
                b.reopen()
        except Exception as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            if buffer.mark_down(reason):
                print(f"[rs] warning: tracking backend {b.name} unreachable at start ({reason}); buffering to "
                      f"{buffer.pending}; replay with `rs tracking sync {run_dir}`", flush=True)
    record.save()
    if export_env:
        os.environ[ENV] = str(record.path)
    return ctx


class OpeningRun:
    """`open_run` in a thread, so a driver's tracking start (MLflow's import and store: 1.5-4 s on 2 cores)
    overlaps its Ray start; `result()` joins it, raises what it raised, and exports the record's path (from
    the calling thread: processes that start meanwhile do not see it half-way)."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, kind: str = "train", **kwargs: Any):
        self._ctx: TrackingContext | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, args=(cfg, run_dir, kind), kwargs=kwargs, daemon=True,
                                        name="rs-tracking-open")
        self._thread.start()

    def _open(self, cfg: ExperimentConfig, run_dir: Path, kind: str, **kwargs: Any) -> None:
        try:
            self._ctx = open_run(cfg, run_dir, kind, export_env=False, **kwargs)
        except BaseException as err:
            self._error = err

    def result(self) -> TrackingContext:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._ctx is not None
        if self._ctx.enabled and self._ctx.record is not None:
            os.environ[ENV] = str(self._ctx.record.path)
        return self._ctx

    def fail(self) -> None:
        """The pipeline did not start: end its runs as FAILED (nothing to do if opening them failed too)."""
        with contextlib.suppress(Exception):
            self.result().close("FAILED")


def attach(path: str | Path | None = None, cfg: ExperimentConfig | None = None, *,
           background: bool = False) -> TrackingContext:
    """Another process's context on the pipeline's runs (`path` or $RS_TRACKING_CONTEXT); no-op if none.
    `background`: connect in a thread (see `TrackingContext`)."""
    path = path or os.environ.get(ENV)
    if not path or not Path(path).exists():
        return TrackingContext(None)
    record = Record.load(path)
    config = {k: v["value"] for k, v in provenance(cfg).items()} if cfg else None
    return TrackingContext(record, config, background=background)


def _flush_pending(record: Record) -> None:
    """A pipeline that starts again first tries to deliver what an earlier outage buffered."""
    for name in ("mlflow",):
        b = buf.Buffer(record.run_dir, name)
        if b.down or b.pending.exists():
            try:
                sync(record.run_dir, quiet=True)
            except Exception:
                return


def sync(run_dir: str | Path, quiet: bool = False) -> dict[str, int]:
    """Replay every buffered event of a run directory; idempotent. Returns events sent per backend."""
    record = Record.load(run_dir)
    ctx = TrackingContext(record)
    sent = {}
    for b in ctx.backends:
        buffer = buf.Buffer(record.run_dir, b.name)
        if b.name != "mlflow" or not (buffer.pending.exists() or buffer.down):
            continue
        sent[b.name] = buf.replay(buffer, b, record.tags)
        record.save()  # a run created now gets its id recorded
        buf.clear(buffer)
        if not quiet:
            print(f"[rs] {b.name}: sent {sent[b.name]} buffered event(s) to run {b.rec.run_id}", flush=True)
    return sent
