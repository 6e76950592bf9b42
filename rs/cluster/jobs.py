"""`rs cluster submit`: `ray job submit` with this project's runtime env, log tailing and the job's outcome
as the exit status (JobSubmissionClient underneath)."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from rs.cluster import auth
from rs.cluster.env import apply_ray_env
from rs.errors import RsError

DEFAULT_RUNTIME_ENV = Path("jobs/runtime_env.yaml")
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass
class JobOutcome:
    job_id: str
    status: str
    message: str | None

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


def load_runtime_env(path: Path | None, *, working_dir: Path | None = None,
                     env_vars: dict[str, str] | None = None) -> dict[str, Any]:
    """The runtime_env YAML (a mapping of Ray's runtime_env fields), plus the working dir and extra env."""
    runtime_env: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise RsError(f"runtime env {path}: no such file (the default is {DEFAULT_RUNTIME_ENV})") from None
        except yaml.YAMLError as err:
            raise RsError(f"runtime env {path}: not valid YAML ({err})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise RsError(f"runtime env {path}: expected a mapping of runtime_env fields, got {type(loaded).__name__}")
        runtime_env = dict(loaded or {})
    if working_dir is not None:
        runtime_env["working_dir"] = str(Path(working_dir).resolve())
    if env_vars:
        runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **env_vars}
    bad = {k: v for k, v in runtime_env.get("env_vars", {}).items() if not isinstance(v, str)}
    if bad:
        raise RsError(f"runtime env env_vars must be strings (quote them in YAML): {bad}")
    return runtime_env


def client(address: str | None = None):
    """A JobSubmissionClient for `address`, else RAY_API_SERVER_ADDRESS / RAY_ADDRESS (Ray's own order)."""
    apply_ray_env()
    auth.for_joining()
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    if not (address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")):
        raise RsError("no Ray cluster to submit to: pass --address http://HEAD:DASHBOARD_PORT or set "
                      "RAY_API_SERVER_ADDRESS (a Slurm cluster's address file sets it: source .rs-slurm/ray-JOB.env)")
    try:
        return JobSubmissionClient(address)
    except AuthenticationError:
        raise RsError(f"the Ray job server at {address or 'RAY_API_SERVER_ADDRESS/RAY_ADDRESS'} refused this "
                      f"process's token ({auth.token_source() or 'none found'}): it uses token authentication; "
                      f"{auth.HOW_TO}") from None
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RsError(f"cannot reach the Ray job server at {address or 'RAY_API_SERVER_ADDRESS/RAY_ADDRESS'}: "
                      f"{err}") from None


def submit(entrypoint: list[str], *, address: str | None = None, runtime_env: dict[str, Any] | None = None,
           submission_id: str | None = None, wait: bool = True, out: TextIO = sys.stdout,
           timeout_s: float | None = None) -> JobOutcome:
    """Submit `entrypoint`; with `wait`, stream its logs to `out` until it ends and return its outcome."""
    if not entrypoint:
        raise RsError("nothing to run: give the command after --, e.g. rs cluster submit -- rs train CONFIG")
    jobs = client(address)
    deadline = time.monotonic() + 120
    while True:
        try:
            job_id = jobs.submit_job(entrypoint=shlex.join(entrypoint), runtime_env=runtime_env or None,
                                     submission_id=submission_id)
            break
        except RuntimeError as err:
            # A head that just started has no job agent yet; Ray's answer is "try again later".
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise RsError(f"job submission failed: {err}") from None
            time.sleep(2)
    print(f"[rs] submitted job {job_id}: {shlex.join(entrypoint)}", file=out, flush=True)
    if not wait:
        return JobOutcome(job_id, _status(jobs.get_job_status(job_id)), None)
    try:
        asyncio.run(_tail(jobs, job_id, out, timeout_s))
    except KeyboardInterrupt:
        print(f"\n[rs] stopped following; job {job_id} keeps running (ray job stop {job_id} ends it)", file=out)
        raise
    deadline = time.monotonic() + 60  # the log stream closes a moment before the status turns terminal
    info = jobs.get_job_info(job_id)
    while _status(info.status) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        info = jobs.get_job_info(job_id)
    return JobOutcome(job_id, _status(info.status), info.message)


def _status(status: Any) -> str:
    return str(getattr(status, "value", status))


async def _tail(jobs: Any, job_id: str, out: TextIO, timeout_s: float | None) -> None:
    async def follow() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    await asyncio.wait_for(follow(), timeout=timeout_s)
