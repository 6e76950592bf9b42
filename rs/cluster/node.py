"""How `rs` starts one Ray node of a multi-node cluster: the port plan and the `ray start` arguments, in one
place for the Slurm templates (rendered with bash placeholders) and the namespace hosts of the test suite
(concrete values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Each job owns PORT_SPAN ports at PORT_MIN + (job id % PORT_SLOTS) * PORT_SPAN: 20000–59999, so two
# clusters on one node (two users, or two jobs) never collide. The last WORKER_PORTS are for worker processes.
PORT_MIN, PORT_SLOTS, PORT_SPAN, WORKER_PORTS = 20000, 200, 200, 150
OFFSETS = {"gcs": 0, "dashboard": 1, "client_server": 2, "node_manager": 3, "object_manager": 4,
           "metrics_export": 5, "dashboard_agent_listen": 6, "dashboard_agent_grpc": 7, "runtime_env_agent": 8}


@dataclass(frozen=True)
class Ports:
    """A job's ports from its base: numbers, or bash arithmetic on a variable's name (`Ports("PORT_BASE")`)."""

    base: int | str

    @classmethod
    def for_job(cls, job_id: int) -> Ports:
        return cls(PORT_MIN + (job_id % PORT_SLOTS) * PORT_SPAN)

    def at(self, offset: int) -> int | str:
        if isinstance(self.base, int):
            return self.base + offset
        return f"${self.base}" if offset == 0 else f"$(({self.base} + {offset}))"

    def __getattr__(self, name: str) -> int | str:
        if name in OFFSETS:
            return self.at(OFFSETS[name])
        raise AttributeError(name)


def node_args(ports: Ports, *, cpus: int | str, gpus: int | str, temp_dir: str, spill_dir: str,
              object_store_mb: int | None = None) -> list[str]:
    """Every node's arguments: resources, a short node-local temp dir, node-local spilling, fixed ports."""
    p = ports
    return [f"--num-cpus={cpus}", f"--num-gpus={gpus}", f"--temp-dir={temp_dir}",
            f"--object-spilling-directory={spill_dir}", f"--node-manager-port={p.node_manager}",
            f"--object-manager-port={p.object_manager}", f"--metrics-export-port={p.metrics_export}",
            f"--dashboard-agent-listen-port={p.dashboard_agent_listen}",
            f"--dashboard-agent-grpc-port={p.dashboard_agent_grpc}", f"--runtime-env-agent-port={p.runtime_env_agent}",
            f"--min-worker-port={p.at(PORT_SPAN - WORKER_PORTS)}", f"--max-worker-port={p.at(PORT_SPAN - 1)}",
            *([f"--object-store-memory={object_store_mb * 1024 * 1024}"] if object_store_mb else []),
            "--disable-usage-stats"]


def head_args(ports: Ports, dashboard_host: str, *, gcs_port: bool = True) -> list[str]:
    """The head's own: the GCS port (`ray symmetric-run` takes it from --address instead), the client server
    and the dashboard (job submission), bound to `dashboard_host`."""
    return [*([f"--port={ports.gcs}"] if gcs_port else []), f"--ray-client-server-port={ports.client_server}",
            "--include-dashboard=true", f"--dashboard-host={dashboard_host}", f"--dashboard-port={ports.dashboard}"]


def start_argv(role: Literal["head", "worker"], *, ip: str, ports: Ports, cpus: int | str, gpus: int | str,
               temp_dir: str, spill_dir: str, head_address: str, dashboard_host: str, block: bool = True,
               object_store_mb: int | None = None) -> list[str]:
    """`ray start` for one node at its explicit address (Ray would guess one, wrongly on multi-homed hosts)."""
    common = node_args(ports, cpus=cpus, gpus=gpus, temp_dir=temp_dir, spill_dir=spill_dir,
                       object_store_mb=object_store_mb)
    own = head_args(ports, dashboard_host) if role == "head" else [f"--address={head_address}"]
    return ["ray", "start", *(["--head"] if role == "head" else []), *(["--block"] if block else []),
            f"--node-ip-address={ip}", *own, *common]
