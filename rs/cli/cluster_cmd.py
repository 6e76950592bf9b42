"""`rs cluster slurm render|submit` and `rs cluster submit`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rs.errors import RsError

app = typer.Typer(help="Ray clusters: Slurm allocations and job submission.", no_args_is_help=True)
slurm_app = typer.Typer(help="Ray on Slurm: sbatch templates (persistent cluster or one-shot).",
                        no_args_is_help=True)
app.add_typer(slurm_app, name="slurm")

Opt = typer.Option


def _slurm_command(submit: bool):
    def command(
        command: Annotated[list[str] | None, typer.Argument(help="oneshot: the command, after --.")] = None,
        mode: Annotated[str, Opt(help="cluster (Ray stays up for jobs) or oneshot (ray symmetric-run).")] = "cluster",
        nodes: Annotated[int, Opt(help="Nodes in the allocation.")] = 1,
        gpus_per_node: Annotated[int, Opt(help="GPUs per node.")] = 0,
        cpus_per_node: Annotated[int | None, Opt(help="CPUs per node (default: whole nodes, --exclusive).")] = None,
        mem: Annotated[str | None, Opt(help="Memory per node (sbatch --mem).")] = None,
        partition: Annotated[str | None, Opt(help="Slurm partition.")] = None,
        account: Annotated[str | None, Opt(help="Slurm account/project.")] = None,
        time: Annotated[str, Opt(help="Wall-time limit.")] = "01:00:00",
        job_name: Annotated[str, Opt(help="Slurm job name.")] = "rs-ray",
        workdir: Annotated[Path, Opt(help="Shared directory jobs run in; relative config paths resolve here.")] = (
            Path(".")),
        storage_path: Annotated[Path | None, Opt(help="Runs go here (default WORKDIR/runs); shared if nodes > 1.")]
        = None,
        shared_storage: Annotated[bool | None, Opt("--shared-storage/--local-storage",
                                                    help="Override the shared-filesystem detection.")] = None,
        state_dir: Annotated[Path | None, Opt(help="Job logs and address files (default WORKDIR/.rs-slurm).")] = None,
        venv: Annotated[Path | None, Opt(help="venv activated on every node (default: this one).")] = None,
        module: Annotated[list[str] | None, Opt(help="`module load` this first; repeatable.")] = None,
        setup: Annotated[list[str] | None, Opt(help="Extra shell line before Ray starts; repeatable.")] = None,
        ip_interface: Annotated[str | None, Opt(help="Network interface Ray binds to, e.g. ib0 or hsn0.")] = None,
        temp_root: Annotated[str, Opt(help="Node-local dir for Ray's temp dirs (short: socket paths).")] = "/tmp",
        local_scratch: Annotated[str, Opt(help="Node-local dir Ray spills objects to.")] = (
            "${LOCAL_SCRATCH:-${TMPDIR:-/tmp}}"),
        dashboard_host: Annotated[str | None, Opt(help="Dashboard bind address (default: the head's IP).")] = None,
        sbatch_opt: Annotated[list[str] | None, Opt("--sbatch", help="Extra #SBATCH option; repeatable.")] = None,
        fast_worker_start: Annotated[bool, Opt(help="Workers import with garbage collection paused.")] = True,
        out: Annotated[Path | None, Opt(help="Write the script here (render prints it otherwise).")] = None,
        wait: Annotated[bool, Opt(help="submit, cluster mode: wait until Ray is up and print its address.")] = True,
        timeout: Annotated[float, Opt(help="submit --wait: seconds to wait for Ray.")] = 900.0,
    ) -> None:
        from rs.cluster import slurm

        if mode not in slurm.TEMPLATES:
            raise RsError(f"--mode {mode}: choose one of {', '.join(slurm.TEMPLATES)}")
        spec = slurm.SlurmSpec(
            mode=mode, nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_node=cpus_per_node,  # type: ignore[arg-type]
            mem=mem, partition=partition, account=account, time=time, job_name=job_name, command=command or [],
            workdir=workdir, state_dir=state_dir, venv=venv, modules=module or [], setup=setup or [],
            storage_path=storage_path, shared_storage=shared_storage, ip_interface=ip_interface,
            temp_root=temp_root, local_scratch=local_scratch,
            dashboard_host=dashboard_host, sbatch_extra=sbatch_opt or [], fast_worker_start=fast_worker_start,
        ).resolved()
        if not submit:
            if out is None:
                sys.stdout.write(slurm.render(spec))
                assert spec.state_dir is not None
                spec.state_dir.mkdir(parents=True, exist_ok=True)  # sbatch --output does not create it
            else:
                typer.echo(f"wrote {slurm.write(spec, out)}")
            return
        script = slurm.write(spec, out)
        job_id = slurm.submit(script)
        typer.echo(f"submitted {script} as Slurm job {job_id}; log: {slurm.log_file(spec, job_id)}")
        if mode != "cluster" or not wait:
            return
        address = slurm.address_file(spec, job_id)
        env = slurm.wait_for_address(address, job_id, timeout)
        typer.echo(f"Ray is up. source {address}   # or: export "
                   f"RAY_API_SERVER_ADDRESS={env.get('RAY_API_SERVER_ADDRESS')}")
        typer.echo(f"then: rs cluster submit -- rs train configs/train/debug.yaml; stop it: scancel {job_id}")

    return command


slurm_app.command("render", help="Render an sbatch script for an allocation shape (stdout or --out).")(
    _slurm_command(submit=False))
slurm_app.command("submit", help="Render into the state dir and sbatch it; cluster mode waits for Ray's address.")(
    _slurm_command(submit=True))


@app.command("submit")
def submit(
    entrypoint: Annotated[list[str], typer.Argument(help="The command the job runs, after --.")],
    address: Annotated[str | None, Opt(help="Job server http://HEAD:PORT (default RAY_API_SERVER_ADDRESS, "
                                            "then RAY_ADDRESS).")] = None,
    runtime_env: Annotated[Path | None, Opt(help="runtime_env YAML (default jobs/runtime_env.yaml).")] = None,
    working_dir: Annotated[Path | None, Opt(help="Uploaded as the job's working dir.")] = Path("."),
    base_dir: Annotated[str | None, Opt(help="Where relative config paths resolve on the cluster "
                                             "(RS_BASE_DIR; a Slurm cluster sets its own).")] = None,
    env: Annotated[list[str] | None, Opt(help="KEY=VALUE for the job's environment; repeatable.")] = None,
    submission_id: Annotated[str | None, Opt(help="Job id to use (default: Ray's).")] = None,
    wait: Annotated[bool, Opt(help="Follow the logs until the job ends; exit non-zero if it failed.")] = True,
) -> None:
    """Submit a job to a Ray cluster (`ray job submit` with this project's runtime env) and follow it."""
    from rs.cluster import jobs

    env_vars = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RsError(f"--env {item!r}: expected KEY=VALUE")
        env_vars[key] = value
    if base_dir:
        env_vars["RS_BASE_DIR"] = base_dir
    if runtime_env is None and jobs.DEFAULT_RUNTIME_ENV.is_file():
        runtime_env = jobs.DEFAULT_RUNTIME_ENV
    runtime = jobs.load_runtime_env(runtime_env, working_dir=working_dir, env_vars=env_vars)
    outcome = jobs.submit(entrypoint, address=address, runtime_env=runtime, submission_id=submission_id, wait=wait)
    if not wait:
        typer.echo(f"job {outcome.job_id}: {outcome.status} (follow it: ray job logs -f {outcome.job_id})")
        return
    typer.echo(f"[rs] job {outcome.job_id} {outcome.status}" + (f": {outcome.message}" if outcome.message else ""))
    if not outcome.ok:
        raise typer.Exit(1)
