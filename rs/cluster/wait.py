"""`python -m rs.cluster.wait --address HOST:PORT --nodes N [--timeout S] [--pid P]`: block until a Ray
cluster's GCS answers and N nodes are alive (what a Slurm script waits for before it prints the address).
Exits 1 when the timeout passes or process P (the srun step running Ray) dies first."""

from __future__ import annotations

import argparse
import os
import sys
import time


def alive_nodes(address: str) -> int | None:
    """Alive nodes as the GCS sees them, or None while it does not answer. Ray's own CLI (symmetric-run)
    asks the GCS the same way; a driver connection (ray.init) would be slower and leave a job behind."""
    from ray._raylet import GcsClient
    from ray.exceptions import RpcError

    try:
        client = GcsClient(address=address)
        client.check_alive([], timeout=2)
        nodes = client.get_all_node_info(timeout=5)
    except (RpcError, ConnectionError, OSError, TimeoutError):
        return None
    return sum(1 for info in nodes.values() if info.state == 0)  # GcsNodeInfo.ALIVE


def _running(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait(address: str, nodes: int, timeout_s: float, pid: int | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        alive = alive_nodes(address)
        if alive is not None and alive >= nodes:
            print(f"[rs] {alive} Ray node(s) alive at {address}", flush=True)
            return True
        if alive != last:
            print(f"[rs] waiting for {nodes} Ray node(s) at {address}: {alive or 0} alive", flush=True)
            last = alive
        if not _running(pid):
            print(f"[rs] the process starting Ray (pid {pid}) exited; see the log above", file=sys.stderr)
            return False
        time.sleep(2)
    print(f"[rs] timed out after {timeout_s:.0f} s waiting for {nodes} Ray node(s) at {address}", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rs.cluster.wait", description=__doc__)
    parser.add_argument("--address", required=True, help="GCS address HOST:PORT")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pid", type=int, default=None, help="give up when this process exits")
    args = parser.parse_args(argv)
    return 0 if wait(args.address, args.nodes, args.timeout, args.pid) else 1


if __name__ == "__main__":
    sys.exit(main())
