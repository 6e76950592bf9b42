"""The session Ray fixture starts a real local Ray with the declared resources."""

import os


def test_ray_session_runs_tasks(ray_session):
    import ray

    assert ray_session["CPU"] == 2.0
    assert os.environ["RAY_AUTH_MODE"] == "token"

    @ray.remote(num_cpus=1)
    def pid() -> int:
        return os.getpid()

    pids = ray.get([pid.remote() for _ in range(4)])
    assert os.getpid() not in pids  # really ran in worker processes
