"""Read W&B offline runs back: the `run-ID.wandb` transaction log (LevelDB log framing around W&B's own
`wandb_internal_pb2.Record` protobufs), every segment of one run id merged the way `wandb sync` does.
Used by `rs tracking show` and the tests; W&B 0.31 ships no Python reader of its own."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer: zero padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
        else:
            break  # zero fill at the end of an unfinished log
    return out


def segments(root: str | Path, run_id: str) -> list[Path]:
    """Offline segment directories of `run_id` under `root` (searched recursively), oldest first."""
    return sorted(Path(root).rglob(f"offline-run-*-{run_id}"), key=lambda p: p.name)


def read_run(root: str | Path, run_id: str) -> dict[str, Any]:
    """{config, history (list of dicts), summary, tags, artifacts, segments} of one W&B run."""
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "tags": [], "artifacts": [], "segments": 0}
    for seg in segments(root, run_id):
        out["segments"] += 1
        for raw in _records(seg / f"run-{run_id}.wandb"):
            rec = pb.Record()
            rec.ParseFromString(raw)
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                out["tags"] = list(dict.fromkeys([*out["tags"], *rec.run.tags]))
                for item in rec.run.config.update:
                    out["config"][item.key] = _value(item.value_json)
            elif kind == "config":
                for item in rec.config.update:
                    out["config"][item.key] = _value(item.value_json)
            elif kind == "history":
                row = {(item.key or ".".join(item.nested_key)): _value(item.value_json) for item in rec.history.item}
                out["history"].append(row)
            elif kind == "summary":
                for item in rec.summary.update:
                    out["summary"][item.key or ".".join(item.nested_key)] = _value(item.value_json)
            elif kind == "artifact":
                out["artifacts"].append(rec.artifact.name)
    out["config"].pop("_wandb", None)
    for k in [k for k in out["config"] if isinstance(out["config"][k], dict) and set(out["config"][k]) == {"value"}]:
        out["config"][k] = out["config"][k]["value"]
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
