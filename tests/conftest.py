"""Shared fixtures: one real local Ray per test session, started lazily and torn down at the end."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Explicit everywhere (see DESIGN: Ray 2.60 turns token auth on for new local clusters).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.pop("RAY_ADDRESS", None)
for var in ("MLFLOW_TRACKING_URI", "WANDB_MODE", "RS_TRACKING_CONTEXT"):
    os.environ.pop(var, None)  # tracking is switched on by the tests that test it
for var in [v for v in os.environ if v.startswith("RS_") and "__" in v]:
    os.environ.pop(var)  # a developer's RS_* overrides must not leak into tests
# Scans remembered on disk (rs.data.scan_cache) stay inside this test session, never in ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="rs-test-cache-")
os.environ["RS_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Cluster tests start their own Ray and Slurm: they go first, before the session's Ray exists, since
    # `ray symmetric-run` refuses a node with another Ray on it (stable sort: the rest keep their order).
    items.sort(key=lambda item: 0 if item.get_closest_marker("cluster") else 1)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated dataset (32², 9 frames, 4/1/1 simulations) for training tests."""
    root = tmp_path_factory.mktemp("pf")
    proc = subprocess.run(
        [sys.executable, "-m", "rs", "data", "generate", "--config", "configs/data/debug.yaml", "--out", str(root),
         "--set", "data.generate.grid=[32, 32]", "--set", "data.generate.frames=9",
         "--set", "data.generate.simulations=[4, 1, 1]"], cwd=REPO, capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    return root


# `rs train` on a Ray cluster in one step (subprocess argv); the cluster tests submit it as a job.
TINY_TRAIN = ["--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=1", "--set", "train.num_workers=1",
              "--set", "train.cpus_per_worker=0.5"]


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session: Ray's daemons outlive their starter and not all name the temp dir
    (the client server, the dashboard and runtime-env agents)."""
    import signal

    import psutil

    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) == sid and proc.pid != os.getpid():
                os.kill(proc.pid, signal.SIGKILL)


def kill_tree(proc: subprocess.Popen, temp_dir: Path) -> None:
    """Kill a driver's process group, then the local Ray it started (found by its temp dir), then whatever of
    the driver's session is left (Ray's client server and agents, which name no temp dir), by PID. The driver
    started with start_new_session=True, so its session id is its PID."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for line in subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()[1:]:
        pid, _, args = line.strip().partition(" ")
        if str(temp_dir) in args:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    kill_session(proc.pid)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[dict[str, float]]:
    """A real local Ray sized for this 2-core machine; shared because each start costs ~7 s."""
    import ray

    # Socket paths must stay under 107 bytes: keep the temp dir short.
    temp_dir = tempfile.mkdtemp(prefix="rsray", dir="/tmp")
    ray.init(
        num_cpus=2,
        object_store_memory=256 * 1024 * 1024,
        include_dashboard=True,  # the State API frees finished Train runs' placement groups (sweeps)
        dashboard_host="127.0.0.1",
        _temp_dir=temp_dir,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


class MlflowServer:
    """A real `mlflow server` on a loopback port: sqlite backend store, local artifact root."""

    def __init__(self, root: Path, port: int | None = None):
        import socket

        self.root = root
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: object = None

    def start(self) -> MlflowServer:
        import subprocess
        import sys
        import time
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "server.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port",
                 str(self.port), "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                 "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
            if self.proc.poll() is not None:  # type: ignore[attr-defined]
                break
        self.stop()
        raise RuntimeError(f"mlflow server did not start: {(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """Kill the server's whole process group (uvicorn workers included), by PID."""
        import signal

        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        proc.wait(timeout=30)  # type: ignore[attr-defined]
        self.proc = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    try:
        yield server
    finally:
        server.stop()
