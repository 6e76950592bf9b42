"""The local buffer of tracking events a backend could not take, and their idempotent replay.

Events are JSON lines under `RUN_DIR/tracking/pending-<backend>.jsonl` (appended by any process of the
pipeline); `down-<backend>` marks the backend unreachable so later processes buffer without waiting on
it. `sync` creates the run if it never existed, replays every event — metric points already in the run
(same key, step and value) are skipped, params/tags/artifacts are idempotent by nature — then clears both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rs.errors import RsError


class Buffer:
    def __init__(self, run_dir: str | Path, backend: str):
        self.dir = Path(run_dir) / "tracking"
        self.backend = backend
        self.pending = self.dir / f"pending-{backend}.jsonl"
        self.down_marker = self.dir / f"down-{backend}"

    @property
    def down(self) -> bool:
        return self.down_marker.exists()

    def mark_down(self, reason: str) -> bool:
        """True when this call is the first to notice (so only it warns)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.down_marker, "x") as f:
                f.write(reason)
            return True
        except FileExistsError:
            return False

    def append(self, op: str, args: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"op": op, "args": args, "ts": int(time.time() * 1000)}, default=str)
        with open(self.pending, "a") as f:  # O_APPEND: lines from several processes do not interleave
            f.write(line + "\n")

    def events(self) -> list[dict[str, Any]]:
        if not self.pending.exists():
            return []
        out = []
        lines = self.pending.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if n < len(lines):  # only a torn last line is expected
                    raise RsError(f"{self.pending}:{n}: corrupt buffered event; fix or delete the line") from None
        return out


def replay(buffer: Buffer, backend: Any, tags: dict[str, str]) -> int:
    """Send every buffered event to `backend`; returns how many were sent (not skipped as present)."""
    events = buffer.events()
    backend.ensure_run(tags)
    sent = 0
    seen: dict[str, set[tuple[int, float]]] = {}
    for e in events:
        op, args = e["op"], e["args"]
        if op in ("log_metrics", "log_summary"):
            metrics = args["metrics"] if op == "log_metrics" else args["values"]
            step = args.get("step") or 0
            fresh = {}
            for k, v in metrics.items():
                if hasattr(backend, "history"):
                    if k not in seen:
                        seen[k] = backend.history(k)
                    if (step, float(v)) in seen[k]:
                        continue
                    seen[k].add((step, float(v)))
                fresh[k] = v
            if fresh:
                if op == "log_metrics":
                    backend.log_metrics(fresh, args.get("step"), e["ts"])
                else:
                    backend.log_summary(fresh, e["ts"])
                sent += 1
        elif op == "close":
            backend.close(args.get("status"))
        else:
            getattr(backend, op)(**args)
            sent += 1
    return sent


def clear(buffer: Buffer) -> None:
    if buffer.pending.exists():
        done = buffer.dir / f"synced-{buffer.backend}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        buffer.pending.replace(done)
    buffer.down_marker.unlink(missing_ok=True)
