"""Start or resume one run: the run directory and its lock, the Trainer, and a session of training
whose every meta.json record goes through the RunDir.

Under torchrun every rank calls `start` or `resume`; rank 0 alone creates, locks and writes the run
directory and hands the others what they need (the run dir, the config, the checkpoint step).

A resume writes nothing into the run directory until its checkpoint has loaded into the model
the (possibly changed) config builds: one that cannot load leaves the run as it found it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from latentrun.config.build import build_model, build_task, resolve_device
from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, INTERRUPTED
from latentrun.launch import guards, lifecycle, resume_plan, warmstart
from latentrun.launch.assembly import assemble
from latentrun.launch.resume_plan import Resume
from latentrun.report import tracker_checks, trackers
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed, precision
from latentrun.train.loggers import NullLogger


def start(
    config: dict[str, Any],
    runs_dir: Path,
    stop_at: int | None = None,
    experiment_file: str | Path | None = None,
    launch: dict[str, Any] | None = None,
    stages: tuple[Path, ...] = (),
) -> tuple[Path, int]:
    """Create a new run directory for `config` and train it; returns (run_dir, exit status).

    `experiment_file` is recorded so that `list --id` can show how the run differs from its file;
    `launch` ({launch: id, launch_index: i}) ties the run to the launch that started it. A config
    with `init.from` first finds (or trains) its source; `stages` are the experiment files whose
    runs are waiting for this one, to refuse a cycle. When a stage stops unfinished, the run is
    not created and (the stage's run dir, its exit status) is returned.
    """
    device = distributed.local_device(resolve_device(config["train"]["device"]))
    precision.check_requested(config["train"]["precision"], device)
    tracker_checks.check(config["train"]["loggers"])
    try:
        source = warmstart.find_source(config, runs_dir, _start_stage, _resume_stage, stages)
    except warmstart.StageStopped as stopped:
        logger.warning(
            f"{stopped.run_dir.name}, the stage init.from names, stopped before it finished; "
            "give the same command again to go on from it"
        )
        return stopped.run_dir, stopped.status if stopped.status != EXIT_OK else EXIT_FAILURE
    if source is not None:  # an architecture the weights do not fit is refused before a run dir exists
        warmstart.check_fits(build_model(config, build_task(config)), source)
    with contextlib.ExitStack() as held:
        run = distributed.from_main(lambda: _create(config, runs_dir, experiment_file, held, launch, source))
        return run.path, _train(run, config, device, stop_at, source=source)


def resume(run_dir: Path, overrides: list[str], force: bool = False, stop_at: int | None = None) -> int:
    """Continue a run from its newest loadable checkpoint, exactly as if it had never stopped."""
    run = RunDir(run_dir)
    with contextlib.ExitStack() as held:
        plan = distributed.from_main(lambda: resume_plan.plan(run, overrides, force, stop_at, held))
        if plan.nothing_to_train:
            distributed.from_main(lambda: run.record_resume(plan.config, plan.step, plan.changes, **plan.event))
            logger.info(f"{run.name} already finished at step {plan.step}; raise train.max_steps with --set to go on")
            return EXIT_OK
        device = distributed.local_device(resolve_device(plan.config["train"]["device"]))
        return _train(run, plan.config, device, stop_at, plan)


def _start_stage(config: dict[str, Any], runs_dir: Path, file: Path, stages: tuple[Path, ...]) -> tuple[Path, int]:
    return start(config, runs_dir, experiment_file=file, stages=stages)


def _resume_stage(run_dir: Path) -> int:
    return resume(run_dir, [])


def _create(
    config: dict[str, Any],
    runs_dir: Path,
    experiment_file: str | Path | None,
    held: contextlib.ExitStack,
    launch: dict[str, Any] | None = None,
    source: warmstart.Source | None = None,
) -> RunDir:
    """Rank 0: the new run directory, locked for as long as `held` lives, with its config and meta."""
    resume_plan.check_world_fits(config)
    run = RunDir.create(runs_dir, config["experiment"])
    held.enter_context(run.lock())
    run.write_config(config)
    run.record_start(
        config,
        distributed.context().world_size,
        experiment_file=str(Path(experiment_file).resolve()) if experiment_file else None,
        **(launch or {}),
        **({"init": source.record()} if source is not None else {}),
    )
    return run


def _train(
    run: RunDir,
    config: dict[str, Any],
    device: torch.device,
    stop_at: int | None,
    resume: Resume | None = None,
    source: warmstart.Source | None = None,
) -> int:
    """Build the trainer and load the checkpoint, then (only then) write to the run dir and train,
    keeping meta.json's status true whatever happens."""
    with guards.thread_count(config["train"]["num_threads"]):
        # A forced resume whose checkpoint does not fit is the command's mistake, not the run's.
        with guards.crash_recorded(run, record=resume is None or not resume.forced):
            built = assemble(run, config, device, resume, source)
        with guards.crash_recorded(run), guards.log_file(run):
            resume_step = resume.step if resume is not None else None
            main = distributed.context().is_main
            loggers = trackers.open_loggers(config, run.path, resume_step) if main else NullLogger()
            status = lifecycle.train_session(run, built, config, device, stop_at, resume, loggers)
            state = built.trainer.state
            best = (
                f"best val/exact_match {state.best_exact_match:.4f} (step {state.best_step})"
                if state.best_exact_match >= 0
                else "not evaluated yet"  # best_exact_match is -1 until the first evaluation
            )
            logger.info(f"{status} at step {state.step}: {best}, {state.elapsed_seconds:.1f} s; run dir {run.path}")
            return EXIT_INTERRUPTED if status == INTERRUPTED else EXIT_OK
