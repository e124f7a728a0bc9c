"""What a launcher (local or SLURM) hands out and gets back, and the rules both follow: one Job per
point, the child command and environment that train it, and how the child's exit status and run
directory become its Outcome (`classify`). One place, so that a run ends the same way wherever it
trained."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentrun.core.status import EXIT_INTERRUPTED, EXIT_OK
from latentrun.launch import record

FAILED = ("crashed", "failed", "damaged")
TAIL_LINES = 10  # of a failed run's console output, shown at the end: where its traceback is
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NO_RUN_DIR = "no run directory was made"


@dataclass(frozen=True)
class Job:
    """One run to launch: its place in the launch, a label, and the command-line arguments that start
    it (`EXP.yaml --set ...` for a new run, `--resume RUN_DIR ...` for one that goes on). `adopt`:
    start nothing, a live process of an earlier launcher already trains this point; wait for it.
    `threads`: the torch threads the run will use, when the launcher knows (None: its config says)."""

    index: int
    label: str
    args: tuple[str, ...]
    run_dir: Path | None = None  # known when the job resumes a run
    overrides: tuple[str, ...] = ()
    experiment: str = ""
    adopt: bool = False
    threads: int | None = None


@dataclass
class Outcome:
    """How a launched run ended, read back from its exit status and run directory."""

    job: Job
    status: str
    run: dict[str, Any] = field(default_factory=dict)  # listing.summarize() of its run dir, if it made one
    message: str = ""
    output_tail: str = ""


def child_command(args: Sequence[str]) -> list[str]:
    """The ordinary single-run command, run by this interpreter: what a child process (or a SLURM
    job) trains one point with, so that its meta.json records a command that reproduces it alone."""
    return [sys.executable, "-m", "latentrun", *args]


def child_env(launch_id: str, index: int, claim: Path | None = None) -> dict[str, str]:
    """The variables a child gets on top of its parent's (or its node's): this checkout of latentrun
    first on its path, unbuffered output (its last lines are read back when it fails), and the tags
    of its launch and point (none outside a launch)."""
    package_root = str(Path(__file__).resolve().parents[2])
    return {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        **(record.environment(launch_id, index, claim) if launch_id else {}),
    }


def classify(job: Job, returncode: int, run: dict[str, Any], output: str, cancelled: bool = False) -> Outcome:
    """How a child ended, from its exit status, the summary of the run dir it made ({} for none) and
    its console output. `cancelled`: the launch sent its children SIGINT/SIGTERM, so dying of that
    signal is an interruption, not a failure.

    A child that exits 0 without a run dir trained nothing that can be listed, compared or resumed:
    a failure, not "finished". A run is finished only when its run dir says so, and a nonzero exit is
    a failure whatever meta.json had time to say."""
    lines = [line for line in output.splitlines() if line.strip()]
    tail = "\n".join(lines[-TAIL_LINES:])
    stopped = cancelled and -returncode in STOPPING_SIGNALS
    if returncode < 0:
        message = f"{'stopped' if stopped else 'killed'} by {_signal_name(-returncode)}"
    elif returncode != EXIT_OK:
        message = f"exit {returncode}: {lines[-1].strip() if lines else 'no output'}"
    else:
        message = f"exit 0 but {NO_RUN_DIR}" if not run else ""
    if stopped:  # the launch's own signal reached it before it could checkpoint: no failure
        return Outcome(job, "interrupted", run, message, tail)
    if not run:
        status = "interrupted" if returncode == EXIT_INTERRUPTED else "failed"
        return Outcome(job, status, run, message, tail)
    status = run["status"]
    if returncode not in (EXIT_OK, EXIT_INTERRUPTED) and status not in FAILED:
        status = "crashed"
    return Outcome(job, status, run, message, tail)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
