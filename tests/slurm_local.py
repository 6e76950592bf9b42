"""A real Slurm for tests: munged + slurmctld + slurmd from Debian's slurm-wlm and munge, all state under one
temp dir, started in the foreground and stopped by PID.

One node: slurmd on localhost. Several: each slurmd on its own namespace host (`rs.cluster.netns`: own
address on a bridge, own hostname, own PID namespace, own /etc/hosts naming every node, and its own
node-local scratch dir mounted at one path, as /tmp is on a real cluster); slurmctld and munged stay on
this machine, reached at the bridge's address. A job step runs where its slurmd runs, so inside its host."""

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
SlurmctldHost=localhost({ctld_ip})
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge.sock
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
{node_lines}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
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
    def __init__(self, root: Path, nodes: int = 1):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.nodes = nodes
        self.hosts = None
        if nodes > 1:
            from rs.cluster.netns import NetnsCluster

            self.hosts = NetnsCluster(nodes=nodes, tag="s")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @property
    def local_dir(self) -> Path:
        """Several nodes: the path where each host sees its own node-local scratch (use as Ray's temp root)."""
        return self.root / "l"

    def node_local(self, i: int) -> Path:
        """Host i's node-local scratch, as this machine sees it."""
        return self.root / f"n{i}"

    def host_pids(self, i: int) -> list[int]:
        assert self.hosts is not None
        return self.hosts.pids(i)

    def _node_lines(self, cpus: int) -> str:
        if self.hosts is None:
            return f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN"
        return "\n".join(f"NodeName={h.hostname} NodeAddr={h.address} CPUs={cpus} State=UNKNOWN"
                         for h in self.hosts.hosts)

    def start(self) -> LocalSlurm:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalSlurm:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ctld_ip = "127.0.0.1"
        if self.hosts is not None:
            from rs.cluster.netns import BRIDGE_IP

            self.hosts.network_up()
            ctld_ip = BRIDGE_IP
        cpus = os.cpu_count() or 1
        self.conf.write_text(CONF.format(root=self.root, ctld_port=_free_port(), slurmd_port=_free_port(),
                                         ctld_ip=ctld_ip, node_lines=self._node_lines(cpus)))
        log = self.root / "log"
        self._spawn(["munged", "-F", "--force", f"--socket={self.root}/munge.sock", f"--key-file={key}",
                     f"--pid-file={self.root}/munged.pid", f"--log-file={log}/munged.log",
                     f"--seed-file={self.root}/munged.seed"], log / "munged.out")
        self._wait(lambda: (self.root / "munge.sock").exists(), "munged")
        self._spawn(["slurmctld", "-D", "-i"], log / "slurmctld.out")
        self._wait(lambda: self._run(["scontrol", "ping"]).returncode == 0, "slurmctld")
        if self.hosts is None:
            (self.root / "spool" / "localhost").mkdir()
            self._spawn(["slurmd", "-D", "-N", "localhost"], log / "slurmd.out")
        else:
            etc_hosts = self.root / "hosts"
            etc_hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{h.address} {h.hostname}\n"
                                                                   for h in self.hosts.hosts))
            self.local_dir.mkdir()
            for h in self.hosts.hosts:
                self.node_local(h.index).mkdir()
                (self.root / "spool" / h.hostname).mkdir()
                argv = self.hosts.in_host(h.index, ["slurmd", "-D", "-N", h.hostname], own_pids=True,
                                          binds=((etc_hosts, Path("/etc/hosts")),
                                                 (self.node_local(h.index), self.local_dir)))
                self._spawn(argv, log / f"slurmd-{h.hostname}.out")
        self._wait(lambda: self._run(["sinfo", "-h", "-N", "-o", "%T"]).stdout.split().count("idle") == self.nodes,
                   f"{self.nodes} slurmd")
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
        logs = "\n".join(f"--- {f.name}\n{f.read_text()[-1500:]}" for f in sorted((self.root / "log").iterdir())
                         if f.is_file())
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
        if self.hosts is not None:
            self.hosts.stop()  # whatever is left on a host, its namespaces and the bridge


def live_processes(pattern: str) -> list[str]:
    """Running (not zombie) processes whose full command line contains `pattern` ("PID CMDLINE" each)."""
    import psutil

    rows = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if pattern in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE and proc.pid != os.getpid():
            rows.append(f"{proc.pid} {cmdline}")
    return rows
