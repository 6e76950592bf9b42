"""Is a run's storage_path visible to every node? Multi-node runs write checkpoints from every worker and
read them on the driver, so a node-local path silently loses them: refuse it before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from rs.errors import RsError

# Filesystem types that are shared between the nodes of an HPC cluster (as /proc/mounts names them).
SHARED_FS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "fuse.glusterfs", "cifs", "smb3",
    "smbfs", "wekafs", "pvfs2", "orangefs", "panfs", "fuse.sshfs", "fuse.gcsfuse", "fuse.s3fs", "fuse.juicefs",
    "fuse.beegfs", "fuse.ceph-fuse", "9p", "virtiofs", "afs", "fuse.lustre",
})


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs and backslashes in paths as octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def mount_of(path: Path, mounts_text: str | None = None) -> tuple[str, str]:
    """(mount point, filesystem type) holding `path` (or its nearest existing parent)."""
    if mounts_text is None:
        mounts_text = Path("/proc/self/mounts").read_text()
    target = Path(os.path.realpath(path))
    best = ("/", "unknown")
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point, fstype = _unescape(parts[1]), parts[2]
        if (target == Path(point) or Path(point) in target.parents) and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def is_shared(path: Path, mounts_text: str | None = None) -> bool:
    return mount_of(path, mounts_text)[1] in SHARED_FS


def require_shared_storage(path: Path, nodes: int, *, what: str = "train.storage_path",
                           shared: bool | None = None, mounts_text: str | None = None) -> None:
    """Raise when a run on several nodes would write to a node-local path. `shared` (cluster.shared_storage)
    overrides the detection for filesystems it does not know."""
    if nodes <= 1 or shared is True:
        return
    point, fstype = mount_of(path, mounts_text)
    if shared is None and fstype in SHARED_FS:
        return
    raise RsError(
        f"{what}={path} is on a node-local filesystem ({fstype} mounted at {point}), but this run spans {nodes} "
        "nodes: workers would write checkpoints the driver never sees. Point it at a shared filesystem "
        f"(e.g. --set {what}=/scratch/<project>/runs, or RS_{what.upper().replace('.', '__')}=…); if this "
        "filesystem is in fact shared, set cluster.shared_storage=true."
    )


def check_run_storage(storage_path: Path, shared: bool | None, *, what: str = "train.storage_path") -> None:
    """The check against the Ray cluster this process is connected to (ray.init already called)."""
    import ray

    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    require_shared_storage(storage_path, nodes, what=what, shared=shared)
