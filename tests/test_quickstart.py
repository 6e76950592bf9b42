"""The getting-started page's command blocks marked `<!-- quickstart -->` run as written, in a fresh
directory holding only the checkout's configs and its `.venv`: the first page a user reads cannot drift
from what works. Environment overrides (lower precedence than anything the page sets) keep it small."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "getting-started" / "laptop.md"
BLOCK = re.compile(r"<!-- quickstart -->\s*```(\w+)\n(.*?)```", re.S)
SMALL = {"RS_DATA__GENERATE__GRID": "[32, 32]", "RS_DATA__GENERATE__FRAMES": "9",
         "RS_DATA__GENERATE__SIMULATIONS": "[4, 1, 1]", "RS_TRAIN__EPOCHS": "1", "RS_TRAIN__MAX_STEPS_PER_EPOCH": "2",
         "RS_TRAIN__NUM_WORKERS": "0", "RS_EVAL__HORIZON": "4", "RS_CLUSTER__NUM_CPUS": "2",
         "RS_CLUSTER__OBJECT_STORE_MB": "192"}


def test_quickstart_blocks_run_as_written(tmp_path: Path):
    blocks = BLOCK.findall(PAGE.read_text())
    assert [lang for lang, _ in blocks] == ["bash", "python"], blocks  # the tour, then the Python API
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])  # the checkout's venv, as `make` made it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "RAY_ADDRESS"))}
    env.update(SMALL)
    for lang, code in blocks:
        argv = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{lang} block failed:\n{code}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if lang == "bash":
            assert "best val_rel_l2" in proc.stdout and "persistence" in proc.stdout
            assert re.search(r"debug\s+\|?\s*[0-9.]", proc.stdout), proc.stdout[-2000:]  # the catalog's row
        else:
            lines = proc.stdout.splitlines()  # Ray may forward log lines between and after the prints
            assert any(line.startswith(str(tmp_path / "runs" / "api")) for line in lines), proc.stdout[-2000:]
            assert any(re.fullmatch(r"\d+\.\d+(e-?\d+)?", line.strip()) for line in lines), proc.stdout[-2000:]
    assert (tmp_path / "runs" / "debug" / "eval" / "test" / "summary.json").is_file()
