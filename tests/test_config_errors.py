"""Every kind of bad config input: one clear line naming the path, exit code 2, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rs.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
DEBUG = str(REPO / "configs/train/debug.yaml")


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "bad.yaml").write_text("train:\n  lr: 0.1\n  epochs: [1, 2\n  x: 3\n")
    (tmp / "a.yaml").write_text("extends: b.yaml\n")
    (tmp / "b.yaml").write_text("extends: a.yaml\n")
    (tmp / "list.yaml").write_text("- 1\n- 2\n")
    (tmp / "typo.yaml").write_text("train:\n  epochz: 3\n")
    return {k: str(tmp / f"{k}.yaml") for k in ("bad", "a", "list", "typo")}


# (id, config, --set items, env, expected one-line message pattern)
CASES = [
    ("unknown_key", DEBUG, ["train.lrr=1"], {}, r"^train\.lrr: unknown field \(did you mean train\.lr\?\) \[cli\]$"),
    ("unknown_key_in_file", "typo", [], {}, r"^train\.epochz: unknown field \(did you mean train\.epochs\?\)"),
    ("unknown_env", DEBUG, [], {"RS_TRAIN__LRX": "1"}, r"^train\.lrx: unknown field .*\[env:RS_TRAIN__LRX\]$"),
    ("wrong_type", DEBUG, ["train.lr=abc"], {}, r"^train\.lr: .*valid number.*'abc'.*\[cli\]$"),
    ("wrong_type_env", DEBUG, [], {"RS_TRAIN__EPOCHS": "many"},
     r"^train\.epochs: .*integer.*\[env:RS_TRAIN__EPOCHS\]$"),
    ("out_of_bounds", DEBUG, ["train.lr=-1"], {}, r"^train\.lr: Input should be greater than 0 \(got -1\) \[cli\]$"),
    ("bad_choice", DEBUG, ["model.backbone=resnet"], {}, r"^model\.backbone: .*'unet', 'fno' or 'sinenet'.*resnet"),
    ("malformed_set", DEBUG, ["train.lr"], {}, r"^--set 'train\.lr': expected dotted\.path=value"),
    ("malformed_set_value", DEBUG, ["train.lr=[1"], {}, r"^--set train\.lr: value '\[1' is not a YAML"),
    ("section_not_leaf", DEBUG, ["train=1"], {}, r"^train: is a section"),
    ("missing_yaml", "/nonexistent/exp.yaml", [], {}, r"^/nonexistent/exp\.yaml: config file not found$"),
    ("unparsable_yaml", "bad", [], {}, r"bad\.yaml:4: unparsable YAML"),
    ("not_a_mapping", "list", [], {}, r"list\.yaml: expected a mapping of config sections, got list"),
    ("extends_cycle", "a", [], {}, r"a\.yaml: extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"),
    ("set_derived", DEBUG, ["model.in_channels=3"], {},
     r"^model\.in_channels: is derived and cannot be set; "
     r"set data\.history, data\.fields, data\.thermal_input instead"),
    ("set_derived_env", DEBUG, [], {"RS_DATA__GENERATE__TAU0": "1"},
     r"^data\.generate\.tau0: is derived .*data\.generate\.w0_over_d0.*\[env:RS_DATA__GENERATE__TAU0\]"),
    ("bad_range", DEBUG, ["data.generate.velocity_range=[3, 1]"], {},
     r"^data\.generate\.velocity_range: needs min <= max"),
    ("bad_tune_space_field", DEBUG, ["tune.space={train.lrr: {choice: [1]}}"], {}, r"^train\.lrr: unknown field"),
    ("bad_tune_distribution", DEBUG, ["tune.space={train.lr: {loguniform: [0, 1]}}"], {}, r"loguniform needs low > 0"),
]


def _resolve(case, tmp_path):
    _, config, sets, env, pattern = case
    files = _files(tmp_path)
    return files.get(config, config), sets, env, pattern


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_load_config_raises_one_line(case, tmp_path):
    config, sets, env, pattern = _resolve(case, tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(config, sets, env=env)
    msg = str(info.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_prints_one_line_and_exits_2(case, tmp_path):
    config, sets, env, pattern = _resolve(case, tmp_path)
    argv = [sys.executable, "-m", "rs", "config", "show", config]
    for s in sets:
        argv += ["--set", s]
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert re.search(pattern, lines[0].removeprefix("error: ")), lines[0]
