"""The `rs` console script as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs.config import DESCRIPTORS, ExperimentConfig
from rs.config.tree import leaves

REPO = Path(__file__).resolve().parents[1]
RS = [sys.executable, "-m", "rs"]


def rs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*RS, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})


def row(out: str, path: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [path])


@pytest.mark.parametrize("args", [["--help"], ["config", "--help"], ["config", "show", "--help"],
                                  ["config", "schema", "--help"]])
def test_help(args):
    proc = rs(*args)
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_show_cli_override_has_source_cli():
    proc = rs("config", "show", "configs/train/debug.yaml", "--set", "train.lr=0.003")
    assert proc.returncode == 0, proc.stderr
    assert row(proc.stdout, "train.lr") == ["train.lr", "0.003", "cli"]
    assert row(proc.stdout, "train.epochs")[2] == "file:configs/train/debug.yaml"
    assert row(proc.stdout, "train.seed")[2] == "file:configs/base.yaml"


def test_show_env_override_has_env_source():
    proc = rs("config", "show", "configs/train/debug.yaml", env={"RS_TRAIN__LR": "0.002"})
    assert proc.returncode == 0, proc.stderr
    assert row(proc.stdout, "train.lr") == ["train.lr", "0.002", "env:RS_TRAIN__LR"]


def test_show_json_round_trips():
    from rs.config import load_config
    from rs.config.serialize import from_text

    proc = rs("config", "show", "configs/train/debug.yaml", "--format", "json", "--set", "model.width=20")
    assert proc.returncode == 0, proc.stderr
    back = from_text(proc.stdout)
    assert back.model.width == 20 and back.sources["model.width"] == "cli"
    assert back == load_config(REPO / "configs/train/debug.yaml", ["model.width=20"], env={})


def test_schema_lists_every_field_with_docs_and_units():
    proc = rs("config", "schema", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["path"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(leaves(ExperimentConfig))
    assert set(DESCRIPTORS) <= set(rows)
    assert rows["train.model_family"]["constraint"] == "{surrogate, diffusion}"
    assert rows["train.lr"]["constraint"] == ">0.0 <=10.0"
    assert rows["data.generate.diffusivity"]["unit"] == "m²/s"
    assert rows["model.in_channels"]["default"] == "(derived)"
    table = rs("config", "schema").stdout
    assert "train.lr" in table and "Solute diffusivity" in table
