"""Ray on Slurm: render the sbatch templates of clusters/slurm/ for an allocation shape and submit them.

`cluster` mode keeps a Ray cluster up on the allocation for `ray job submit`; `oneshot` mode runs one
command under `ray symmetric-run` and tears everything down with it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rs.cluster import node
from rs.cluster.env import IDLE_WORKER_KEEP_MS
from rs.cluster.startup import hook_env
from rs.cluster.storage import require_shared_storage
from rs.errors import RsError

Mode = Literal["cluster", "oneshot"]
TEMPLATES = {"cluster": "ray-cluster.sbatch.j2", "oneshot": "ray-oneshot.sbatch.j2"}


@dataclass
class SlurmSpec:
    """The shape of an allocation and where things live; every path absolute at render time."""

    mode: Mode = "cluster"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_node: int | None = None  # None: whole nodes (--exclusive)
    mem: str | None = None
    partition: str | None = None
    account: str | None = None
    time: str = "01:00:00"
    job_name: str = "rs-ray"
    command: list[str] = field(default_factory=list)  # oneshot: e.g. ["rs", "train", "configs/…"]
    workdir: Path = field(default_factory=Path.cwd)
    state_dir: Path | None = None  # logs and the address file; default WORKDIR/.rs-slurm
    venv: Path | None = None  # activated on every node; default: this interpreter's venv
    modules: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # extra shell lines before Ray starts
    storage_path: Path | None = None  # RS_TRAIN__STORAGE_PATH of every run (default WORKDIR/runs); shared if nodes > 1
    shared_storage: bool | None = None
    ip_interface: str | None = None  # e.g. ib0 / hsn0; default: the address `hostname --ip-address` gives
    dashboard_host: str | None = None  # default: the head node's address (0.0.0.0 only when asked)
    auth_mode: Literal["token", "disabled"] = "token"
    token_path: str = "$HOME/.ray/auth_token"
    temp_root: str = "/tmp"
    local_scratch: str = "${LOCAL_SCRATCH:-${TMPDIR:-/tmp}}"
    sbatch_extra: list[str] = field(default_factory=list)
    start_timeout_s: int = 300
    signal_lead_s: int = 120
    drain_s: int = 0
    oneshot_gcs_wait_s: int = 20  # oneshot: a worker's Ray ends this long after the head's (srun waits 3×)
    fast_worker_start: bool = True  # workers import with GC paused (rs.cluster.startup)

    def resolved(self) -> SlurmSpec:
        spec = SlurmSpec(**{**self.__dict__})
        spec.workdir = Path(self.workdir).resolve()
        spec.state_dir = Path(self.state_dir or spec.workdir / ".rs-slurm").resolve()
        if spec.venv is None and sys.prefix != sys.base_prefix:
            spec.venv = Path(sys.prefix)
        spec.storage_path = Path(self.storage_path or spec.workdir / "runs").resolve()
        return spec


def template_dir() -> Path:
    """clusters/slurm of the checkout `rs` runs from (an editable install, as the README sets up)."""
    here = Path(__file__).resolve().parents[2] / "clusters" / "slurm"
    if not (here / TEMPLATES["cluster"]).is_file():
        raise RsError(f"Slurm templates not found in {here}: run rs from a checkout of the repository "
                      "(pip install -e .), where clusters/slurm/ holds them")
    return here


def _validate(spec: SlurmSpec) -> None:
    if spec.mode not in TEMPLATES:
        raise RsError(f"mode {spec.mode!r}: choose one of {sorted(TEMPLATES)}")
    if spec.nodes < 1 or spec.gpus_per_node < 0 or (spec.cpus_per_node is not None and spec.cpus_per_node < 1):
        raise RsError(f"allocation shape nodes={spec.nodes} gpus_per_node={spec.gpus_per_node} "
                      f"cpus_per_node={spec.cpus_per_node}: nodes and CPUs must be ≥ 1, GPUs ≥ 0")
    if spec.mode == "oneshot" and not spec.command:
        raise RsError("oneshot mode runs one command: give it after --, e.g. "
                      "rs cluster slurm render --mode oneshot -- rs train configs/train/debug.yaml")
    if spec.mode == "cluster" and spec.command:
        raise RsError("cluster mode keeps Ray up for `ray job submit`; a command goes with --mode oneshot")
    assert spec.storage_path is not None
    try:
        require_shared_storage(spec.storage_path, spec.nodes, what="train.storage_path", shared=spec.shared_storage)
    except RsError as err:  # the same check as rs train's; here the switches are the command's own
        raise RsError(f"{err} With rs cluster slurm: --storage-path DIR, or --shared-storage.") from None


def _wrap(args: list[str], indent: str, width: int = 100) -> str:
    """Arguments as bash continuation lines of at most `width` characters."""
    lines = [""]
    for arg in args:
        if lines[-1] and len(lines[-1]) + len(arg) + 1 > width:
            lines.append("")
        lines[-1] += (" " if lines[-1] else "") + arg
    return f" \\\n{indent}".join(lines)


def render(spec: SlurmSpec) -> str:
    import jinja2

    spec = spec.resolved()
    _validate(spec)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir()), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False,
                             comment_start_string="<#jinja", comment_end_string="jinja#>")  # bash has ${#array}
    env.filters["q"] = lambda value: shlex.quote(str(value))
    # The ray start arguments come from rs.cluster.node (as for the test suite's namespace hosts), rendered
    # with bash placeholders: the ports from the job id, resources and node-local dirs from the allocation.
    args = node.node_args(node.Ports("PORT_BASE"), cpus="$NODE_CPUS", gpus="$NODE_GPUS", temp_dir="$RS_RAY_TMP",
                          spill_dir="$RS_RAY_SPILL")
    head = node.Ports("RS_GCS_PORT")  # the batch script's PORT_BASE does not reach srun's tasks; this does
    values = {**spec.__dict__, "command": shlex.join(spec.command), "port_min": node.PORT_MIN,
              "port_slots": node.PORT_SLOTS, "port_span": node.PORT_SPAN, "worker_ports": node.WORKER_PORTS,
              "idle_worker_keep_ms": IDLE_WORKER_KEEP_MS, "worker_env": hook_env(spec.fast_worker_start),
              "node_args": _wrap(args, " "),
              "head_args": _wrap(node.head_args(head, "$DASHBOARD_HOST"), "      "),
              "symmetric_head_args": _wrap(node.head_args(head, "$DASHBOARD_HOST", gcs_port=False), "      ")}
    return env.get_template(TEMPLATES[spec.mode]).render(**values)


def write(spec: SlurmSpec, out: Path | None = None) -> Path:
    """Render into STATE_DIR/<job_name>.sbatch (or `out`), written to a temp name then renamed."""
    spec = spec.resolved()
    text = render(spec)
    assert spec.state_dir is not None
    path = Path(out) if out else spec.state_dir / f"{spec.job_name}.sbatch"
    spec.state_dir.mkdir(parents=True, exist_ok=True)  # sbatch --output does not create directories
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(path)
    return path


def submit(script: Path, sbatch: str = "sbatch") -> str:
    """sbatch the script; returns the job id."""
    proc = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RsError(f"sbatch {script} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]


def address_file(spec: SlurmSpec, job_id: str) -> Path:
    spec = spec.resolved()
    assert spec.state_dir is not None
    return spec.state_dir / f"ray-{job_id}.env"


def log_file(spec: SlurmSpec, job_id: str) -> Path:
    spec = spec.resolved()
    assert spec.state_dir is not None
    return spec.state_dir / f"{spec.job_name}-{job_id}.log"


def wait_for_address(path: Path, job_id: str, timeout_s: float, squeue: str = "squeue") -> dict[str, str]:
    """Wait until the job wrote its address file; an error (with the log's tail) if the job ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file():
            return parse_env_file(path)
        state = subprocess.run([squeue, "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
        if state.returncode == 0 and not state.stdout.strip():
            raise RsError(f"Slurm job {job_id} ended before Ray came up; see its log beside {path}")
        time.sleep(2)
    raise RsError(f"Slurm job {job_id}: no Ray address in {path} after {timeout_s:.0f} s (still queued?)")


def parse_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            out[key.strip()] = value.strip()
    return out
