"""Ray clusters of real hosts on this one machine (for the test suite and `rs bench cluster`; needs root):
each node in its own network namespace (own address on a bridge made here, own hostname in a UTS
namespace), its Ray started with the arguments the Slurm templates use (`rs.cluster.node`), the driver
run inside the head's namespace.

Addresses come only from 198.18.0.0/24 (the benchmarking range) on the harness's own bridge, never routed
anywhere else. Namespaces, the bridge and every process are torn down by the names and PIDs created here:
the namespaces share the PID namespace, /dev/shm and the disk, so `ray stop` would stop every Ray on the
machine; `ip netns pids NS` lists exactly one node's processes, and killing them all is a node crash. One
such cluster runs at a time on a machine (they share the subnet)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rs.cluster import node as ray_node

SUBNET = "198.18.0"
BRIDGE_IP = f"{SUBNET}.254"
BIN = Path(sys.executable).parent


def missing() -> str | None:
    """Why namespace hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if shutil.which("unshare") is None:
        return "util-linux's `unshare` is not installed"
    probe = subprocess.run(["ip", "netns", "add", "rsprobe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", "rsprobe"], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    index: int
    netns: str
    hostname: str
    address: str
    temp_dir: Path
    alive: bool = False


@dataclass
class NetnsCluster:
    """`nodes` hosts, the first the head; `tag` keeps names of concurrent clusters apart (≤ 4 chars)."""

    nodes: int = 2
    cpus_per_node: int = 1
    tag: str = "t"
    object_store_mb: int = 192
    env: dict[str, str] = field(default_factory=dict)  # extra environment of every node (and the driver)
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    job_id: int = 0  # drives the port plan, as SLURM_JOB_ID does

    def __post_init__(self) -> None:
        self.bridge = f"rsbr{self.tag}"
        self.job_id = os.getpid() % 10_000
        self.root = Path(tempfile.mkdtemp(prefix=f"rsns{self.tag}", dir="/tmp"))  # short: socket paths
        for i in range(self.nodes):
            self.hosts.append(Host(i, f"rs{self.tag}n{i}", f"rs-{self.tag}-node{i}", f"{SUBNET}.{i + 1}",
                                   self.root / f"n{i}"))

    @property
    def ports(self) -> ray_node.Ports:
        return ray_node.Ports.for_job(self.job_id)

    @property
    def gcs_address(self) -> str:
        return f"{self.hosts[0].address}:{self.ports.gcs}"

    @property
    def dashboard(self) -> str:
        return f"http://{self.hosts[0].address}:{self.ports.dashboard}"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
        return {**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}", "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": str(self.root / "auth_token"), **self.env}

    # -- network -------------------------------------------------------------------------------------------
    def network_up(self) -> None:
        """The bridge and one namespace per host, each with its address; no processes yet."""
        # One such cluster at a time on a machine: they share the subnet (and 198.18.0.1 would be two hosts).
        taken = subprocess.run(["ip", "-o", "addr", "show", "to", BRIDGE_IP], capture_output=True, text=True).stdout
        if taken.strip():
            raise RuntimeError(f"another namespace cluster holds {BRIDGE_IP} ({taken.split()[1]}); stop it first")
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_IP}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for h in self.hosts:
            host_end, ns_end = f"rs{self.tag}v{h.index}", f"rs{self.tag}p{h.index}"
            _ip("netns", "add", h.netns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("link", "set", ns_end, "netns", h.netns)
            _ip("-n", h.netns, "addr", "add", f"{h.address}/24", "dev", ns_end)
            _ip("-n", h.netns, "link", "set", ns_end, "up")
            _ip("-n", h.netns, "link", "set", "lo", "up")

    def in_host(self, i: int, argv: list[str], *, own_pids: bool = False,
                binds: tuple[tuple[Path, Path], ...] = ()) -> list[str]:
        """`argv` run on host `i`: its network namespace, and a UTS namespace carrying its hostname.

        `own_pids` makes it a fuller host: its own PID namespace, `argv` under a bash that reaps orphans and
        passes SIGTERM on (what scans processes, `ray stop` or `ray symmetric-run`'s "Ray is already
        started", then sees only this host's, and every process of the host ends with `argv`), and its own
        mount namespace with `binds` (source, target) mounted in it: its /etc/hosts, its node-local scratch.
        This machine's /sys stays (`ip netns exec` would remount it, and slurmd needs the cgroup mounts)."""
        h = self.hosts[i]
        if not own_pids:
            assert not binds, "binds come with own_pids"
            return ["ip", "netns", "exec", h.netns, "unshare", "--uts", "sh", "-c",
                    f'hostname {h.hostname} && exec "$@"', "sh", *argv]
        mounts = "".join(f"mount --bind {shlex.quote(str(s))} {shlex.quote(str(t))} && " for s, t in binds)
        script = (f'hostname {h.hostname} && {mounts}{{ "$@" & child=$!; trap \'kill -TERM $child\' TERM INT; '
                  'while kill -0 $child 2>/dev/null; do wait $child; done; }')
        return ["nsenter", f"--net=/run/netns/{h.netns}", "unshare", "--uts", "--mount", "--pid", "--fork",
                "--mount-proc", "bash", "-c", script, "bash", *argv]

    # -- Ray -----------------------------------------------------------------------------------------------
    def _start_node(self, i: int) -> None:
        h = self.hosts[i]
        h.temp_dir.mkdir(parents=True, exist_ok=True)
        role = "head" if i == 0 else "worker"
        argv = ray_node.start_argv(
            role, ip=h.address, ports=self.ports, cpus=self.cpus_per_node, gpus=0, temp_dir=str(h.temp_dir),
            spill_dir=str(h.temp_dir / "spill"), head_address=self.gcs_address, dashboard_host=h.address,
            block=False, object_store_mb=self.object_store_mb)
        proc = subprocess.run(self.in_host(i, argv), env=self.base_env(), capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start on {h.hostname} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        h.alive = True

    def start(self) -> NetnsCluster:
        try:
            self.network_up()
            subprocess.run([sys.executable, "-m", "rs.cluster.auth"], env=self.base_env(), check=True,
                           capture_output=True)  # as the Slurm template does before the head starts
            for i in range(self.nodes):
                self._start_node(i)
            self.wait_nodes(self.nodes)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_nodes(self, n: int, timeout_s: float = 120) -> None:
        proc = subprocess.run([sys.executable, "-m", "rs.cluster.wait", "--address", self.gcs_address, "--nodes",
                               str(n), "--timeout", str(timeout_s)], env=self.base_env(), capture_output=True,
                              text=True, timeout=timeout_s + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"{n} Ray nodes did not come up: {proc.stdout[-1000:]} {proc.stderr[-1000:]}")

    def restart_node(self, i: int) -> None:
        """A lost host comes back: a fresh Ray node at the same address."""
        shutil.rmtree(self.hosts[i].temp_dir, ignore_errors=True)
        self._start_node(i)

    def pids(self, i: int) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.hosts[i].netns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill_node(self, i: int) -> list[int]:
        """A crash: every process of host `i` SIGKILLed at once (raylet, object store, workers, agents)."""
        pids = self.pids(i)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.hosts[i].alive = False
        return pids

    def driver(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        """`argv` in the head's namespace, joined to the cluster (RAY_ADDRESS)."""
        env = {**self.base_env(), "RAY_ADDRESS": self.gcs_address, **kwargs.pop("env", {})}
        return subprocess.run(self.in_host(0, argv), env=env, capture_output=True, text=True, **kwargs)

    def driver_popen(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:  # the child keeps its own descriptor
            return subprocess.Popen(self.in_host(0, argv), env={**self.base_env(), "RAY_ADDRESS": self.gcs_address,
                                                                **(env or {})},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for h in self.hosts:
            if subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.find(h.netns) >= 0:
                for _ in range(3):  # processes started while killing (a worker forking) are caught next round
                    pids = self.pids(h.index)
                    if not pids:
                        break
                    self.kill_node(h.index)
                    time.sleep(0.5)
                subprocess.run(["ip", "netns", "del", h.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)  # takes the veth ends with it
        shutil.rmtree(self.root, ignore_errors=True)
