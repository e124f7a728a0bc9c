"""What a resume will do, decided by rank 0 before anything is written: the config to go on with,
the checkpoint to load, the config changes to record, and what a longer train.max_steps does to the
learning-rate schedule.

Planning writes nothing but the removal of dead writers' temporary files: a resume that cannot
go on leaves the run as it found it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from loguru import logger

from latentrun import config as config_module
from latentrun.config.build import learning_rate_factor, resolve_device, schedule_span
from latentrun.core.errors import ConfigError, RunError
from latentrun.report import tracker_checks
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed, precision
from latentrun.train.checkpoints_protocol import State

# The key that fixes how many steps the learning-rate schedule spans (null: train.max_steps).
SCHEDULE_KEY = "train.schedule_steps"


@dataclass(frozen=True)
class Resume:
    """What rank 0 decided for a resume, for every rank: the config to go on with, the step of the
    checkpoint to load (0 for none yet), and the config changes to record once it has loaded."""

    config: dict[str, Any]
    step: int
    changes: dict[str, list[Any]]
    forced: bool  # some change alters what is computed, allowed by --force
    tested: bool  # meta.json holds the test-split grade of the checkpoint's step
    lr_schedule: str | None = None  # with a changed train.max_steps: "keep" (the span) or "stretch" it
    lr_warning: str | None = None  # a stretch that warms the rate up again, said once the run's log is open
    # Rank 0's checkpoint, read while planning. It stays on rank 0: the others read the same file
    # themselves rather than receive every tensor through a broadcast (see __getstate__).
    checkpoint: State | None = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "checkpoint": None}

    @property
    def nothing_to_train(self) -> bool:
        """A finished run that was graded: the resume only records itself."""
        return self.step >= self.config["train"]["max_steps"] and self.tested

    @property
    def event(self) -> dict[str, Any]:
        """What the resume's history event records beside its step and changes."""
        return {"forced": self.forced, **({"lr_schedule": self.lr_schedule} if self.lr_schedule else {})}

    def load_checkpoint(self, run: RunDir) -> State | None:
        """The checkpoint to go on from: rank 0's own; another rank reads the file rank 0 chose and verified."""
        if self.checkpoint is not None or self.step == 0:
            return self.checkpoint
        return run.checkpointer().load(self.step)


def plan(run: RunDir, overrides: list[str], force: bool, stop_at: int | None, held: contextlib.ExitStack) -> Resume:
    """Rank 0: lock the run (for as long as `held` lives), check the overrides, the process count
    and --stop-at, and pick the checkpoint."""
    held.enter_context(run.lock())
    for leftover in run.remove_temporaries():
        logger.debug(f"removed {leftover.name}, left by a process killed while writing it")
    frozen, updated = run.config(), run.config(overrides)
    changes = config_module.diff(frozen, updated)
    refused = [key for key in changes if not _allowed(key, frozen, updated)]
    if refused and not force:
        raise ConfigError(
            [
                f"--set {key}: changes what the run computes ({changes[key][0]!r} -> {changes[key][1]!r}); "
                "pass --force to change it anyway"
                for key in refused
            ]
        )
    check_world_fits(updated)
    precision.check_requested(updated["train"]["precision"], resolve_device(updated["train"]["device"]))
    tracker_checks.check(updated["train"]["loggers"])
    state = run.checkpointer().newest()
    check_same_world(run, state)
    step = state["step"] if state else 0
    max_steps = updated["train"]["max_steps"]
    # It would stop at once and say nothing. A finished run trains nothing anyway: that stays allowed.
    if stop_at is not None and stop_at <= step < max_steps:
        raise RunError(
            f"--stop-at {stop_at}: {run.name} is already at step {step}; give a later step, "
            f"or leave --stop-at out to train on to train.max_steps ({max_steps})"
        )
    # A finished run that was never graded (killed during its final test, or older than the test
    # split) resumes only to be graded.
    tested = (run.meta().get("test") or {}).get("step") == step
    if step >= max_steps and not tested:
        logger.info(f"{run.name} was never graded on its test split at step {step}: grading it now")
    recorded = {key: list(values) for key, values in changes.items()}
    lr_schedule, lr_warning = _lr_schedule(frozen, updated, step) if "train.max_steps" in changes else (None, None)
    return Resume(updated, step, recorded, bool(refused), tested, lr_schedule, lr_warning, state)


def _allowed(key: str, frozen: dict[str, Any], updated: dict[str, Any]) -> bool:
    """Whether a resume may change `key` without --force: a run-control key, or the schedule's span
    pinned to the span the run had (which changes nothing already computed)."""
    if key == SCHEDULE_KEY:
        return updated["train"]["schedule_steps"] == schedule_span(frozen)
    return key in config_module.RUN_CONTROL_KEYS


def _lr_schedule(frozen: dict[str, Any], updated: dict[str, Any], step: int) -> tuple[str, str | None]:
    """With a changed train.max_steps: ("keep", None) when the schedule's span stays what it was, or
    ("stretch", warning) when it follows the new length; the warning (None when the rate does not
    rise) says how to keep the floor instead."""
    span = schedule_span(frozen)
    if schedule_span(updated) == span:
        return "keep", None
    # Update `step` ran at factor(step - 1); the next one runs at factor(step), under the old plan
    # or the stretched one. Rising above both old rates is the warm-up nobody asked for.
    last = learning_rate_factor(frozen, step - 1)
    planned, stretched = max(last, learning_rate_factor(frozen, step)), learning_rate_factor(updated, step)
    if stretched <= planned:
        return "stretch", None
    peak = updated["optimizer"]["lr"]
    return "stretch", (
        f"train.max_steps {frozen['train']['max_steps']} -> {updated['train']['max_steps']} stretches the "
        f"learning-rate schedule over the new length: the rate goes from {last * peak:.3g} at step {step} "
        f"up to {stretched * peak:.3g} at step {step + 1}; to stay on the schedule's floor instead, "
        f"resume with --set {SCHEDULE_KEY}={span}"
    )


def check_world_fits(config: dict[str, Any]) -> None:
    """train.batch_size is the global batch: it must split evenly over the processes torchrun started."""
    world_size, batch_size = distributed.context().world_size, config["train"]["batch_size"]
    if batch_size % world_size:
        raise ConfigError(
            [
                f"train.batch_size: {batch_size} examples cannot be split evenly over the "
                f"{world_size} processes torchrun started; use a multiple of {world_size}"
            ]
        )


def check_same_world(run: RunDir, state: State | None) -> None:
    """A run resumes on as many processes as it was trained on: each rank's RNG streams are in its checkpoint."""
    recorded = state.get("world_size", 1) if state else run.meta().get("world_size", 1)
    world_size = distributed.context().world_size
    if recorded == world_size:
        return
    how = "python run.py --resume" if recorded == 1 else f"torchrun --nproc_per_node={recorded} run.py --resume"
    raise RunError(
        f"{run.path}: trained on {recorded} process(es) but resumed on {world_size}; "
        f"resume it the way it was started: {how} {run.path}"
    )


def warn(run: RunDir, device: torch.device, plan: Resume) -> None:
    """Rank 0, once the run's log is open: what this resume changes about the course of the run."""
    _warn_if_threads_changed(run, device)
    if plan.lr_warning is not None:
        logger.warning(plan.lr_warning)


def _warn_if_threads_changed(run: RunDir, device: torch.device) -> None:
    """Say so when a CPU run resumes with another torch thread count than it last ran with: the
    reductions inside matmuls split differently, so the rest of the run is no longer bitwise equal
    to one that never stopped (a 2-digit run reached 1.000 exact match on 1 thread, 0.971 on 2)."""
    recorded = run.meta().get("threads")
    now = torch.get_num_threads()
    if device.type == "cpu" and recorded is not None and recorded != now:
        logger.warning(
            f"{run.name} ran with {recorded} CPU thread(s) and resumes with {now}: from here on it "
            f"will not be bitwise equal to an uninterrupted run; resume with "
            f"--set train.num_threads={recorded} to keep it exact"
        )
