"""Hot outputs: tensors in batches to `.safetensors`, scalars appended to `.jsonl`, by a background writer.

Producers (evaluation, sampled predictions in training) never wait on the disk: `HotWriter.tensors` and
`.scalars` enqueue into a bounded queue (a full queue blocks, so memory stays bounded) and one thread
writes. Every file is written under a temporary name and renamed, so readers never see half a file. The
writer flushes and closes on normal exit, on an exception in the `with` block and on SIGTERM: nothing
queued is lost.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

_STOP = object()


class HotWriter:
    def __init__(self, directory: str | Path, stream: str, *, max_queue: int = 64, tensors_per_file: int = 256):
        self.dir = Path(directory) / "hot" / stream
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stream = stream
        self.tensors_per_file = tensors_per_file
        self._q: queue.Queue[Any] = queue.Queue(max_queue)
        self._pending: dict[str, np.ndarray] = {}
        self._part = len(list(self.dir.glob("part-*.safetensors")))
        self._jsonl = self.dir / f"scalars-{os.getpid()}.jsonl"
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"hot-writer-{stream}", daemon=True)
        self._thread.start()
        self._old_term = None
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, self._on_term)

    # -- producer side ----------------------------------------------------------------------------
    def tensors(self, named: dict[str, Any]) -> None:
        """Arrays (numpy or torch) by unique name; written in batches of `tensors_per_file`."""
        self._raise()
        self._q.put(("tensors", {k: _numpy(v) for k, v in named.items()}))

    def scalars(self, row: dict[str, Any]) -> None:
        """One JSON line."""
        self._raise()
        self._q.put(("scalars", row))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join()
        if self._old_term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_term)
        self._raise()

    def __enter__(self) -> HotWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _on_term(self, signum: int, frame: Any) -> None:
        self.close()
        old = self._old_term
        if callable(old):
            old(signum, frame)
        raise SystemExit(128 + signum)

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"hot writer {self.dir} failed: {self._error}") from self._error

    # -- writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is _STOP:
                    self._flush_tensors()
                    return
                kind, payload = item
                if kind == "tensors":
                    self._pending.update(payload)
                    if len(self._pending) >= self.tensors_per_file:
                        self._flush_tensors()
                else:
                    with open(self._jsonl, "a") as f:
                        f.write(json.dumps(payload, default=_json_default) + "\n")
            except BaseException as err:  # surfaced to the producer on its next call
                self._error = err

    def _flush_tensors(self) -> None:
        if not self._pending:
            return
        from safetensors.numpy import save_file

        self._part += 1
        final = self.dir / f"part-{os.getpid()}-{self._part:05d}.safetensors"
        tmp = final.with_suffix(".tmp")
        save_file(self._pending, str(tmp))
        tmp.replace(final)
        self._pending = {}


def _numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.ascontiguousarray(v)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
