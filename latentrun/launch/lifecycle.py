"""One session of training a run, from the moment its trainer stands: mark the run running, fit,
grade a finished run's best checkpoint on the test split, and record how the session ended, in
meta.json (through the RunDir) and in the session's loggers, which it closes whatever happens.

The loggers come in opened (`report.trackers.open_loggers` on rank 0, a NullLogger elsewhere), so
that a test can hand the session fakes of the MetricLogger and Checkpoints protocols.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from loguru import logger

from latentrun.core.status import CRASHED, FINISHED
from latentrun.launch import grading, resume_plan
from latentrun.launch.assembly import Built
from latentrun.launch.resume_plan import Resume
from latentrun.report import trackers
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed
from latentrun.train.loggers import MetricLogger


def train_session(
    run: RunDir,
    built: Built,
    config: dict[str, Any],
    device: torch.device,
    stop_at: int | None,
    resume: Resume | None,
    loggers: MetricLogger,
) -> str:
    """Train with `loggers`, grade a finished run, record how the session ended; returns its status
    (FINISHED, INTERRUPTED or STOPPED; an exception propagates once the loggers have recorded a crash).

    The run is marked running only once the session's records are on disk: a run killed right after
    (the out-of-memory killer) still shows in TensorBoard's HParams, as a session that never ended.
    """
    world, trainer = distributed.context(), built.trainer
    if world.is_main:
        logger.info(f"precision {built.choice.name} ({built.choice.reason})")
    trainer.metric_logger = loggers
    outcome, test = CRASHED, None
    try:
        if resume is None:
            trackers.record_run(loggers, config, built.parameters)
        loggers.flush()
        distributed.from_main(lambda: _mark_running(run, config, device, resume, built))
        if resume is not None:
            logger.info(f"resuming {run.name} at step {resume.step} on {device}")
        else:
            processes = f", {world.world_size} processes" if world.world_size > 1 else ""
            logger.info(f"run {run.name}: {built.parameters:,} parameters on {device}{processes}")
        outcome = trainer.fit(stop_at)
        if outcome == FINISHED:
            outcome = CRASHED  # until graded: a grading that fails ends the session as crashed
            outcome, test = grading.grade(trainer)  # INTERRUPTED when stopped while grading
    finally:
        trackers.close_loggers(loggers, trainer.state, outcome)
    if world.is_main:
        run.record_end(dataclasses.asdict(trainer.state), outcome, test, max_steps=trainer.settings.max_steps)
    return outcome


def _mark_running(
    run: RunDir, config: dict[str, Any], device: torch.device, resume: Resume | None, built: Built
) -> None:
    """Rank 0, once the trainer stands: record the resume and mark the run running."""
    if resume is not None:
        resume_plan.warn(run, device, resume)
        run.record_resume(resume.config, resume.step, resume.changes, **resume.event)
    choice = built.choice
    run.record_running(
        parameters=built.parameters,
        max_steps=config["train"]["max_steps"],
        precision={
            "requested": config["train"]["precision"],
            "resolved": choice.name,
            "reason": choice.reason,
            "probe_seconds": choice.timings,
        },
        threads=torch.get_num_threads(),
    )
