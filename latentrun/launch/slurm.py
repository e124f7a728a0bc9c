"""`--launcher slurm`: the runs of a launch handed to a SLURM cluster through submitit, one job each.

Each job runs the ordinary single-run command (`python -m latentrun EXP.yaml --set ...` or
`--resume RUN_DIR`) on its node, exactly as the local launcher's child processes do, and its end is
classified by the same rule (`jobs.classify`), so a run's meta.json, checkpoints, exit statuses and
outcome mean the same wherever it trained. submitit is an optional extra
(`pip install -e '.[slurm]'`). `--slurm cluster=local` hands the jobs to submitit's local executor
instead: processes on this machine, all started at once, to try a SLURM launch without a cluster.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latentrun.launch import record
from latentrun.launch.jobs import TAIL_LINES, Job, Outcome, child_command, child_env, classify
from latentrun.report import listing
from latentrun.runs import run_files as runs

CLUSTER = "slurm"  # where jobs go unless `--slurm cluster=...` says otherwise
CLUSTERS = ("slurm", "local")  # submitit's debug executor runs jobs inside the launcher: not offered


def run_child(args: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    """On the job's node: run one latentrun command; its exit status and last lines of output.

    Returned rather than raised (as submitit's CommandFunction would) because 130, a clean stop
    after a signal, is an outcome the launcher reports, not a failure."""
    process = subprocess.run(
        child_command(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        text=True,
        errors="replace",
    )
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    return process.returncode, "\n".join(lines[-TAIL_LINES:])


def split_parameters(parameters: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(cluster, submitit parameters) from the `--slurm KEY=VALUE` flags, every parameter checked
    against submitit's own list first, so that a misspelt one is named (RunError) wherever the
    launch was started, not hidden behind "no sbatch"."""
    given = dict(parameters or {})
    cluster = given.pop("cluster", CLUSTER)
    if cluster not in CLUSTERS:
        raise runs.RunError(f"--slurm cluster={cluster}: unknown cluster; one of {', '.join(CLUSTERS)}")
    submitit = _import_submitit()
    with tempfile.TemporaryDirectory(prefix="latentrun-submitit-") as folder:
        # The local executor checks names and types as the SLURM one does, and needs no cluster.
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        for key, value in given.items():
            try:
                executor.update_parameters(**{key: value})
            except NameError:
                raise runs.RunError(f"--slurm {key}={value}: {_unknown(submitit, key)}") from None
            except (AssertionError, TypeError, ValueError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise runs.RunError(f"--slurm {key}={value}: {reason}") from None
    return cluster, given


def _unknown(submitit: Any, key: str) -> str:
    """Why submitit refused `key`, with the closest parameter it knows."""
    try:  # submitit's own lists (what its error message prints), private but stable since 1.2
        known = [*submitit.AutoExecutor._typed_parameters(), "cluster"]
        known += [f"slurm_{name}" for name in submitit.SlurmExecutor._valid_parameters()]
    except AttributeError:
        known = []
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return (
        "not a submitit parameter (shared ones: name, timeout_min, mem_gb, nodes, cpus_per_task, "
        f"gpus_per_node, tasks_per_node; SLURM's own: slurm_partition, slurm_account, ...){hint}"
    )


def check_available(parameters: dict[str, Any] | None = None) -> Any:
    """submitit, once the parameters are known good and jobs can be submitted from here; RunError
    saying why not."""
    cluster, _ = split_parameters(parameters)
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise runs.RunError(
            "--launcher slurm: no sbatch on PATH; launch from a SLURM login node "
            "(or try it on this machine with --slurm cluster=local)"
        )
    return _import_submitit()


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise runs.RunError("--launcher slurm needs submitit: pip install -e '.[slurm]'") from None
    return submitit


def run_jobs(
    planned: Sequence[Job],
    runs_dir: Path,
    launch_id: str,
    report: Callable[[Outcome], None],
    parameters: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Submit one job per planned run, wait for them all, and return their Outcomes in plan order."""
    submitit = check_available(parameters)
    cluster, given = split_parameters(parameters)
    folder = runs_dir / record.LAUNCHES_DIR / launch_id / "submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    try:
        executor.update_parameters(name=f"latentrun-{launch_id}", **given)
    except (AssertionError, NameError, TypeError, ValueError) as error:
        raise runs.RunError(f"--launcher slurm: {error}") from None
    submitted = []
    for job in planned:
        submitted.append((job, executor.submit(run_child, list(job.args), child_env(launch_id, job.index))))
        print(
            f"[{len(submitted)}/{len(planned)}] submitted {job.label} (job {submitted[-1][1].job_id})", file=sys.stderr
        )
    outcomes = {}
    try:
        for job, handle in submitted:
            try:
                returncode, tail = handle.result()
            except Exception as error:  # the job itself failed: killed, out of time, node lost
                returncode, tail = (
                    1,
                    str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__,
                )
            run_dir = job.run_dir or record.launch_runs(runs_dir, launch_id).get(job.index)
            outcomes[job.index] = classify(job, returncode, listing.summarize(run_dir) if run_dir else {}, tail)
            report(outcomes[job.index])
    except KeyboardInterrupt:
        for _, handle in submitted:
            handle.cancel(check=False)  # SLURM signals each job; a run checkpoints and stops on SIGTERM
        raise
    return [outcomes[job.index] for job in planned]
