"""What a launcher (local or SLURM) hands out and gets back: one Job per point, one Outcome each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAILED = ("crashed", "failed", "damaged")


@dataclass(frozen=True)
class Job:
    """One run to launch: its place in the launch, a label, and the command-line arguments that start
    it (`EXP.yaml --set ...` for a new run, `--resume RUN_DIR ...` for one that goes on). `adopt`:
    start nothing, a live process of an earlier launcher already trains this point; wait for it."""

    index: int
    label: str
    args: tuple[str, ...]
    run_dir: Path | None = None  # known when the job resumes a run
    overrides: tuple[str, ...] = ()
    experiment: str = ""
    adopt: bool = False


@dataclass
class Outcome:
    """How a launched run ended, read back from its exit status and run directory."""

    job: Job
    status: str
    run: dict[str, Any] = field(default_factory=dict)  # listing.summarize() of its run dir, if it made one
    message: str = ""
    output_tail: str = ""
