"""A real single-node Slurm on localhost for tests: munged + slurmctld + slurmd from Debian's slurm-wlm and
munge, all state under one temp dir, started in the foreground and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")

CONF = """\
ClusterName=rslocal
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge.sock
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why a local Slurm cannot run here, or None."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return f"Debian's slurm-wlm and munge are not installed ({', '.join(absent)} missing; .ci/run installs them)"
    if os.geteuid() != 0:
        return "slurmd launches jobs as their owners and must run as root here"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> LocalSlurm:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(CONF.format(root=self.root, ctld_port=_free_port(), slurmd_port=_free_port(),
                                         cpus=os.cpu_count() or 1))
        log = self.root / "log"
        self._spawn(["munged", "-F", "--force", f"--socket={self.root}/munge.sock", f"--key-file={key}",
                     f"--pid-file={self.root}/munged.pid", f"--log-file={log}/munged.log",
                     f"--seed-file={self.root}/munged.seed"], log / "munged.out")
        self._wait(lambda: (self.root / "munge.sock").exists(), "munged")
        self._spawn(["slurmctld", "-D", "-i"], log / "slurmctld.out")
        self._wait(lambda: self._run(["scontrol", "ping"]).returncode == 0, "slurmctld")
        self._spawn(["slurmd", "-D", "-N", "localhost"], log / "slurmd.out")
        self._wait(lambda: "idle" in self._run(["sinfo", "-h", "-o", "%T"]).stdout, "slurmd")
        return self

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True)

    def _spawn(self, args: list[str], out: Path) -> None:
        with open(out, "ab") as fh:
            self.procs.append(subprocess.Popen(args, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _wait(self, ready, what: str, timeout_s: float = 60) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ready():
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.5)
        logs = "\n".join(f"--- {f.name}\n{f.read_text()[-1500:]}" for f in sorted((self.root / "log").iterdir()))
        self.stop()
        raise RuntimeError(f"local Slurm: {what} did not come up\n{logs}")

    def job_state(self, job_id: str) -> dict[str, str]:
        """JobState, ExitCode, … as `scontrol show job` prints them (kept MinJobAge after the end)."""
        out = self._run(["scontrol", "show", "job", "-o", job_id]).stdout
        return dict(field.split("=", 1) for field in out.split() if "=" in field)

    def wait_job_gone(self, job_id: str, timeout_s: float) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if not self._run(["squeue", "-h", "-j", job_id]).stdout.strip():
                return
            time.sleep(1)
        raise AssertionError(f"Slurm job {job_id} still queued after {timeout_s} s")

    def stop(self) -> None:
        """Cancel what is left, then stop slurmd, slurmctld and munged by PID."""
        with contextlib.suppress(OSError):
            self._run(["scancel", "--user", "root"])
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        self.procs.clear()


def live_processes(pattern: str) -> list[str]:
    """Running (not zombie) processes whose full command line contains `pattern` ("PID CMDLINE" each)."""
    import psutil

    rows = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if pattern in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE and proc.pid != os.getpid():
            rows.append(f"{proc.pid} {cmdline}")
    return rows
