"""rs.cluster.auth: a token before any Ray rs starts, the joined cluster's mode followed, the user's choice kept.
(Real heads with and without tokens: tests/test_cluster_jobs.py.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rs.cluster import auth


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (auth.MODE_VAR, auth.TOKEN_VAR, auth.PATH_VAR):
        monkeypatch.setenv(var, "")  # records the value to restore: the code under test sets them directly
        monkeypatch.delenv(var)
    return tmp_path


def test_a_token_is_made_once_private_and_kept(fresh_home: Path):
    assert auth.token_source() is None
    path = auth.ensure_token()
    assert path == fresh_home / ".ray" / "auth_token"
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0  # 32 random bytes as hex, as Ray makes them
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.ensure_token() == path and path.read_text() == token  # never replaced
    assert auth.token_source() == str(path)
    assert not [p for p in path.parent.iterdir() if p.name != "auth_token"]  # no temp files left


def test_token_path_and_token_variable_are_honoured(fresh_home: Path, monkeypatch: pytest.MonkeyPatch):
    shared = fresh_home / "shared" / "tok"
    monkeypatch.setenv(auth.PATH_VAR, str(shared))
    assert auth.ensure_token() == shared and shared.read_text()
    shared.write_text("")  # an empty file is no token: replaced
    assert auth.ensure_token() == shared and len(shared.read_text()) == 64
    monkeypatch.setenv(auth.TOKEN_VAR, "abc")
    assert auth.ensure_token() is None and auth.token_source() == "$RAY_AUTH_TOKEN"


def test_starting_ray_turns_tokens_on_unless_the_user_chose(fresh_home: Path, monkeypatch: pytest.MonkeyPatch):
    auth.for_new_cluster("token")
    assert os.environ[auth.MODE_VAR] == "token" and (fresh_home / ".ray" / "auth_token").is_file()
    (fresh_home / ".ray" / "auth_token").unlink()
    monkeypatch.setenv(auth.MODE_VAR, "disabled")
    auth.for_new_cluster("token")
    assert os.environ[auth.MODE_VAR] == "disabled" and not (fresh_home / ".ray" / "auth_token").exists()


def test_joining_follows_the_token_at_hand(fresh_home: Path, monkeypatch: pytest.MonkeyPatch):
    auth.for_joining()
    assert auth.MODE_VAR not in os.environ  # no token: a plain cluster is the only one it can join
    auth.ensure_token()
    auth.for_joining()
    assert os.environ[auth.MODE_VAR] == "token"
    monkeypatch.setenv(auth.MODE_VAR, "disabled")
    auth.for_joining()
    assert os.environ[auth.MODE_VAR] == "disabled"


def test_the_slurm_templates_command_makes_the_token_at_the_shared_path(fresh_home: Path):
    shared = fresh_home / "project" / "auth_token"
    env = {**os.environ, auth.PATH_VAR: str(shared)}
    proc = subprocess.run([sys.executable, "-m", "rs.cluster.auth"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(shared) and len(shared.read_text()) == 64


def test_an_unreachable_address_is_left_to_ray():
    auth.check_gcs("127.0.0.1:1")  # nothing listens: no probe, no error of ours (ray.init reports it)
    auth.check_gcs("ray://127.0.0.1:10001")
