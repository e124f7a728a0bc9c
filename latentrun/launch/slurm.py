"""`--launcher slurm`: the runs of a launch handed to a SLURM cluster through submitit, one job each.

Each job runs the ordinary single-run command (`python -m latentrun EXP.yaml --set ...` or
`--resume RUN_DIR`) on its node, exactly as the local launcher's child processes do, so a run's
meta.json, checkpoints and exit statuses mean the same wherever it trained. submitit is an optional
extra (`pip install -e '.[slurm]'`); its local executor runs the same jobs as processes on this
machine, which is how the tests exercise this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latentrun.core.status import EXIT_INTERRUPTED, EXIT_OK
from latentrun.launch import record
from latentrun.report import listing
from latentrun.runs import run_files as runs

CLUSTER = "slurm"  # submitit's name for where jobs go; the tests set "local"
_TAIL_LINES = 10


def run_child(args: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    """On the job's node: run one latentrun command; its exit status and last lines of output.

    Returned rather than raised (as submitit's CommandFunction would) because 130, a clean stop
    after a signal, is an outcome the launcher reports, not a failure."""
    process = subprocess.run(
        [sys.executable, "-m", "latentrun", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        text=True,
        errors="replace",
    )
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    return process.returncode, "\n".join(lines[-_TAIL_LINES:])


def check_available() -> Any:
    """submitit, once it is known that jobs can be submitted from here; RunError saying why not."""
    try:
        import submitit
    except ImportError:
        raise runs.RunError("--launcher slurm needs submitit: pip install -e '.[slurm]'") from None
    if CLUSTER == "slurm" and shutil.which("sbatch") is None:
        raise runs.RunError("--launcher slurm: no sbatch on PATH; launch from a SLURM login node")
    return submitit


def run_jobs(
    planned: Sequence[Any],
    runs_dir: Path,
    launch_id: str,
    report: Callable[[Any], None],
    parameters: dict[str, Any] | None = None,
) -> list[Any]:
    """Submit one job per planned run, wait for them all, and return their Outcomes in plan order."""
    from latentrun.launch.jobs import Outcome

    submitit = check_available()
    folder = runs_dir / record.LAUNCHES_DIR / launch_id / "submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=CLUSTER)
    try:
        executor.update_parameters(name=f"latentrun-{launch_id}", **(parameters or {}))
    except (TypeError, ValueError) as error:
        raise runs.RunError(f"--launcher slurm: {error}") from None
    package_root = str(Path(__file__).resolve().parents[2])
    base_env = {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    submitted = []
    for job in planned:
        env = {**base_env, **record.environment(launch_id, job.index)}
        submitted.append((job, executor.submit(run_child, list(job.args), env)))
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
            run = listing.summarize(run_dir) if run_dir else {}
            status = run.get("status") or ("interrupted" if returncode == EXIT_INTERRUPTED else "failed")
            if returncode not in (EXIT_OK, EXIT_INTERRUPTED) and status not in ("crashed", "failed"):
                status = "crashed"
            message = f"exit {returncode}: {tail.splitlines()[-1] if tail else 'no output'}" if returncode else ""
            outcomes[job.index] = Outcome(job, status, run, message, tail)
            report(outcomes[job.index])
    except KeyboardInterrupt:
        for _, handle in submitted:
            handle.cancel(check=False)  # SLURM signals each job; a run checkpoints and stops on SIGTERM
        raise
    return [outcomes[job.index] for job in planned]
