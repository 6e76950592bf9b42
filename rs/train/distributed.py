"""Process groups across hosts: each worker binds the collective library's sockets to the network interface
that carries its Ray node's address.

Gloo (and NCCL's bootstrap) pick an interface by resolving the host's name; where the name does not resolve
(containers, namespaces, many compute nodes) Gloo falls back to 127.0.0.1 and the first all-reduce between
two hosts fails with "connectFullMesh … Connection refused, remote=[127.0.0.1]"; where it resolves to the
management network, collectives bypass the interconnect. The node's Ray address is the one the cluster was
started on (`--node-ip-address`, e.g. the Slurm templates' `--ip-interface ib0`), so its interface is right.
A GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME the user set is kept.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from ray.train.torch import TorchConfig as RayTorchConfig
from ray.train.torch.config import _TorchBackend

SOCKET_VARS = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")


def interface_of(ip: str) -> str | None:
    """The name of the local interface holding IPv4 address `ip`, or None."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == ip for a in addrs):
            return name
    return None


def bind_to_node_address() -> str | None:
    """In a Train worker: point the collective libraries at its node's interface; returns the interface."""
    import ray

    name = interface_of(ray.util.get_node_ip_address())
    if name is not None:
        for var in SOCKET_VARS:
            os.environ.setdefault(var, name)
    return name


class _NodeAddressBackend(_TorchBackend):
    def on_start(self, worker_group: Any, backend_config: RayTorchConfig) -> None:
        worker_group.execute(bind_to_node_address)  # before Ray Train creates the process group
        super().on_start(worker_group, backend_config)


@dataclass
class TorchConfig(RayTorchConfig):
    """Ray Train's TorchConfig whose process group binds to each node's Ray address."""

    @property
    def backend_cls(self) -> type[_TorchBackend]:
        return _NodeAddressBackend
