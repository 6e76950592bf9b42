"""Slurm templates render for many allocation shapes into valid bash; node-local storage is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rs.cluster import slurm
from rs.cluster.storage import is_shared, mount_of, require_shared_storage
from rs.errors import RsError

REPO = Path(__file__).resolve().parents[1]

MOUNTS = """\
overlay / overlay rw 0 0
tmpfs /tmp tmpfs rw 0 0
10.0.0.5:/export/home /home nfs4 rw 0 0
scratch@o2ib:/scratch /scratch lustre rw 0 0
/dev/nvme0n1 /local_scratch xfs rw 0 0
/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0
"""

SHAPES = [
    dict(mode="cluster", nodes=1),
    dict(mode="cluster", nodes=4, gpus_per_node=4, partition="gpu", account="project_2001234", time="12:00:00",
         modules=["pytorch/2.13"], ip_interface="ib0", shared_storage=True),
    dict(mode="cluster", nodes=2, cpus_per_node=64, mem="200G", dashboard_host="0.0.0.0", shared_storage=True,
         sbatch_extra=["--constraint=nvme"], setup=["export NCCL_DEBUG=WARN"]),
    dict(mode="oneshot", nodes=1, command=["rs", "train", "configs/train/debug.yaml", "--set", "train.lr=1e-3"]),
    dict(mode="oneshot", nodes=8, gpus_per_node=8, shared_storage=True,
         command=["rs", "tune", "configs/tune/debug.yaml", "--set", "tune.name=it's quoted"]),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s['mode']}-{s['nodes']}n{s.get('gpus_per_node', 0)}g")
def test_templates_render_to_valid_bash(shape, tmp_path):
    spec = slurm.SlurmSpec(workdir=tmp_path, **shape)
    script = slurm.write(spec, tmp_path / "job.sbatch")
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = script.read_text()
    assert f"#SBATCH --nodes={shape['nodes']}" in text
    assert "export RAY_AUTH_MODE=token" in text and "export HDF5_USE_FILE_LOCKING=FALSE" in text
    assert "PORT_BASE=$(( 20000 + (SLURM_JOB_ID % 200) * 200 ))" in text  # ports from the job id
    assert "--num-cpus=$NODE_CPUS --num-gpus=$NODE_GPUS" in text and "SLURM_CPUS_PER_TASK" in text
    assert '--temp-dir=$RS_RAY_TMP' in text and "--object-spilling-directory=$RS_RAY_SPILL" in text
    assert f"export RS_TRAIN__STORAGE_PATH={tmp_path / 'runs'}" in text
    if shape.get("gpus_per_node"):
        assert f"#SBATCH --gpus-per-node={shape['gpus_per_node']}" in text
    if shape.get("cpus_per_node"):
        assert f"#SBATCH --cpus-per-task={shape['cpus_per_node']}" in text and "--exclusive" not in text
    else:
        assert "#SBATCH --exclusive" in text
    host = shape.get("dashboard_host") or "$HEAD_IP"
    assert f"DASHBOARD_HOST={host}" in text  # the head's address unless asked otherwise
    if shape["mode"] == "oneshot":
        assert "ray symmetric-run" in text and f"--min-nodes {shape['nodes']}" in text
        assert "'tune.name=it'\"'\"'s quoted'" in text or "tune.name" not in " ".join(shape["command"])
    else:
        assert "ray start --head --block" in text and "ray-$SLURM_JOB_ID.env" in text
    if shape.get("ip_interface"):
        assert f"ip -4 -o addr show {shape['ip_interface']}" in text


def test_multi_node_refuses_node_local_storage(tmp_path):
    spec = slurm.SlurmSpec(nodes=2, workdir=tmp_path, storage_path=Path("/tmp/runs"))
    with pytest.raises(RsError, match=r"train.storage_path=/tmp/runs is on a node-local filesystem.*2 nodes"):
        slurm.render(spec)
    slurm.render(slurm.SlurmSpec(nodes=1, workdir=tmp_path, storage_path=Path("/tmp/runs")))  # one node: fine
    # The CLI says it in one line and exits 2, before anything is written or submitted.
    proc = subprocess.run([sys.executable, "-m", "rs", "cluster", "slurm", "submit", "--nodes", "4",
                           "--storage-path", "/tmp/runs", "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "node-local filesystem" in proc.stderr, proc.stderr
    assert not (tmp_path / "state").exists()


def test_shared_filesystem_detection():
    assert mount_of(Path("/scratch/project_1/runs"), MOUNTS) == ("/scratch", "lustre")
    assert is_shared(Path("/home/user/runs"), MOUNTS)
    assert not is_shared(Path("/tmp/runs"), MOUNTS)
    assert not is_shared(Path("/local_scratch/x"), MOUNTS)
    assert mount_of(Path("/mnt/my disk/runs"), MOUNTS) == ("/mnt/my disk", "ext4")
    require_shared_storage(Path("/scratch/p/runs"), 4, mounts_text=MOUNTS)
    with pytest.raises(RsError, match="xfs mounted at /local_scratch"):
        require_shared_storage(Path("/local_scratch/runs"), 4, mounts_text=MOUNTS)
    require_shared_storage(Path("/local_scratch/runs"), 4, shared=True, mounts_text=MOUNTS)  # the user knows
    with pytest.raises(RsError):
        require_shared_storage(Path("/home/x"), 2, shared=False, mounts_text=MOUNTS)


def test_bad_shapes_are_clear_errors(tmp_path):
    with pytest.raises(RsError, match="oneshot mode runs one command"):
        slurm.render(slurm.SlurmSpec(mode="oneshot", workdir=tmp_path))
    with pytest.raises(RsError, match="cluster mode keeps Ray up"):
        slurm.render(slurm.SlurmSpec(mode="cluster", workdir=tmp_path, command=["rs", "train", "x.yaml"]))
    with pytest.raises(RsError, match="nodes and CPUs must be"):
        slurm.render(slurm.SlurmSpec(nodes=0, workdir=tmp_path))


EXAMPLE = ["--nodes", "4", "--gpus-per-node", "4", "--cpus-per-node", "32", "--mem", "320G", "--partition", "gpu",
           "--account", "project_2001234", "--time", "12:00:00", "--workdir", "/scratch/project_2001234/rs",
           "--venv", "/scratch/project_2001234/rs/.venv", "--module", "pytorch/2.13", "--shared-storage",
           "--ip-interface", "ib0"]


@pytest.mark.parametrize("name, extra", [
    ("ray-cluster-4x4gpu.sbatch", []),
    ("ray-oneshot-4x4gpu.sbatch", ["--mode", "oneshot", "--job-name", "rs-tune", "--", "rs", "tune",
                                   "configs/tune/debug.yaml", "--set", "train.use_gpu=true"]),
])
def test_committed_examples_are_what_the_templates_render(name, extra):
    """The examples users read (and the copy in docs/clusters.md) are re-rendered whenever a template changes."""
    proc = subprocess.run([sys.executable, "-m", "rs", "cluster", "slurm", "render", *EXAMPLE, *extra], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert proc.stdout == (REPO / "clusters/slurm/examples" / name).read_text(), \
        f"re-render clusters/slurm/examples/{name}: rs cluster slurm render {' '.join(EXAMPLE + extra)}"
    if name.startswith("ray-cluster"):
        page = (REPO / "docs" / "clusters.md").read_text()
        assert proc.stdout.strip() in page, "the copy in docs/clusters.md of the rendered cluster script is stale"
