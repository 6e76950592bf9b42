"""Ray token authentication, decided in one place.

Where `rs` starts Ray (a local `rs train`/`rs tune`, the Slurm templates, test fixtures) token mode is on
and a token exists before the first Ray process starts: `ray start --head` under RAY_AUTH_MODE=token exits
1 when none exists (Ray's `ray.init()` creates one, `ray start` does not). Where `rs` joins a cluster
someone else started (RAY_ADDRESS, `cluster.address`, a job's driver, `rs cluster submit`) it follows that
cluster: token mode when a token is at hand (as Ray itself does for `address="auto"`), otherwise none — a
token client talks to a plain cluster unharmed, a client without one cannot talk to a token cluster. A
RAY_AUTH_MODE the user set always wins.

Ray reads its token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path

from rs.errors import RsError

MODE_VAR, TOKEN_VAR, PATH_VAR = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
HOW_TO = ("give this process the cluster's token: RAY_AUTH_TOKEN_PATH=<a copy of the head's token file> "
          "(the head's ~/.ray/auth_token unless it set RAY_AUTH_TOKEN_PATH) or RAY_AUTH_TOKEN=<token>; on a "
          "Slurm cluster `source` its address file, which sets both RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH")


def token_path() -> Path:
    """Where Ray looks for the token file of this process."""
    return Path(os.environ.get(PATH_VAR) or Path.home() / ".ray" / "auth_token").expanduser()


def token_source() -> str | None:
    """Where this process's token comes from (for messages), or None when it has none."""
    if os.environ.get(TOKEN_VAR, "").strip():
        return f"${TOKEN_VAR}"
    path = token_path()
    return str(path) if path.is_file() and path.read_text().strip() else None


def ensure_token() -> Path | None:
    """Make sure a token exists for a Ray this process is about to start; returns its file (None when the
    token comes from RAY_AUTH_TOKEN). Written once, 0600, by rename: concurrent starters agree on one."""
    if os.environ.get(TOKEN_VAR, "").strip():
        return None
    path = token_path()
    if path.is_file() and path.read_text().strip():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".auth_token.", dir=path.parent)  # mkstemp files are 0600
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # fails if another starter won the race: theirs is kept
    except FileExistsError:
        if not path.read_text().strip():
            os.replace(tmp, path)  # an empty file left by someone else: replace it
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _set_mode(mode: str) -> None:
    os.environ[MODE_VAR] = mode
    if "ray._raylet" in sys.modules:  # Ray read the mode when imported (a notebook): refresh it as Ray does
        from ray._raylet import Config

        Config.initialize("")


def for_new_cluster(mode: str = "token") -> None:
    """Before this process starts Ray: `mode` unless the user chose one, and a token when it is token mode."""
    if os.environ.get(MODE_VAR) is None:
        _set_mode(mode)
    if os.environ[MODE_VAR].lower() == "token":
        ensure_token()


def for_joining() -> None:
    """Before this process connects to a cluster it did not start: token mode when a token is at hand."""
    if os.environ.get(MODE_VAR) is None and token_source() is not None:
        _set_mode("token")


def check_gcs(address: str) -> None:
    """Fail fast, and clearly, when the cluster at a GCS address refuses this process's token; Ray itself
    retries for ~20 s and then reports only that it could not connect. Other failures are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # ray:// clients and auto-discovery are Ray's to resolve
    try:  # an unreachable GCS would hold the probe for 40 s before ray.init waits again: leave that to Ray
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        GcsClient(address=address)  # asks the GCS for its cluster id: refused at once without the token
    except AuthenticationError:
        mode = os.environ.get(MODE_VAR) or "unset"
        have = token_source()
        raise RsError(
            f"the Ray cluster at {address} refused this process: it uses token authentication and "
            + (f"the token from {have} is not its token" if have and mode.lower() == "token"
               else f"this process has no token (RAY_AUTH_MODE {mode}, token {have or 'none found'})")
            + f"; {HOW_TO}") from None
    except Exception:  # unreachable or not a GCS: ray.init reports it in its own words
        return


if __name__ == "__main__":  # the Slurm templates: `python -m rs.cluster.auth` before `ray start --head`
    print(ensure_token() or f"${TOKEN_VAR}")
