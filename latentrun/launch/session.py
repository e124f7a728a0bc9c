"""Start or resume one run: the run directory, its lock and meta.json history, logging, and the Trainer.

Under torchrun every rank calls `start` or `resume`; rank 0 alone creates, locks and writes the run
directory and hands the others what they need (the run dir, the config, the checkpoint step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loguru import logger
from torch.utils.tensorboard import SummaryWriter

from latentrun import config as config_module
from latentrun.config import ConfigError
from latentrun.config.build import build_clipper, build_components, build_loss_guard, choose_precision, resolve_device
from latentrun.report import hparams
from latentrun.runs import checkpoint
from latentrun.runs import lock as run_lock
from latentrun.runs import rundir as runs
from latentrun.train import distributed
from latentrun.train.precision import PRECISIONS, Choice, MixedPrecision, check_available
from latentrun.train.trainer import INTERRUPTED, Trainer, TrainerState, TrainSettings

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def start(
    config: dict[str, Any], runs_dir: Path, stop_at: int | None = None, experiment_file: str | Path | None = None
) -> tuple[Path, int]:
    """Create a new run directory for `config` and train it; returns (run_dir, exit status).

    `experiment_file` is recorded so that `list --id` can show how the run differs from its file.
    """
    device = distributed.local_device(resolve_device(config["train"]["device"]))
    _check_precision(config, device)
    with contextlib.ExitStack() as held:
        run_dir = distributed.from_main(lambda: _create(config, runs_dir, experiment_file, held))
        return run_dir, _train(run_dir, config, device, stop_at, resume_from=None)


def _create(
    config: dict[str, Any], runs_dir: Path, experiment_file: str | Path | None, held: contextlib.ExitStack
) -> Path:
    """Rank 0: the new run directory, locked for as long as `held` lives, with its config and meta."""
    _check_world_fits(config)
    run_dir = runs.create_run_dir(runs_dir, config["experiment"])
    held.enter_context(run_lock.hold(run_dir))
    runs.write_text_atomic(run_dir / runs.CONFIG_FILE, config_module.dump(config))
    runs.write_json_atomic(
        run_dir / runs.META_FILE,
        {
            "id": run_dir.name,
            "experiment": config["experiment"],
            "experiment_file": str(Path(experiment_file).resolve()) if experiment_file else None,
            "model": config["model"]["name"],
            "seed": config["seed"],
            "created": runs.now(),
            "command": runs.command_line(),
            "environment": runs.environment(),
            "world_size": distributed.context().world_size,
            "status": "created",
            **runs.process_owner(),
            "history": [{"event": "start", "time": runs.now(), "step": 0, "command": runs.command_line()}],
        },
    )
    return run_dir


def resume(run_dir: Path, overrides: list[str], force: bool = False, stop_at: int | None = None) -> int:
    """Continue a run from its newest loadable checkpoint, exactly as if it had never stopped."""
    with contextlib.ExitStack() as held:
        loaded: dict[str, Any] = {}
        updated, step = distributed.from_main(lambda: _prepare_resume(run_dir, overrides, force, held, loaded))
        if step >= updated["train"]["max_steps"]:
            return EXIT_OK
        if distributed.context().is_main:
            state = loaded["state"]
        else:  # the file rank 0 chose and verified; each rank reads it for itself
            state = checkpoint.load(run_dir / runs.CHECKPOINT_DIR / checkpoint.step_file_name(step)) if step else None
        device = distributed.local_device(resolve_device(updated["train"]["device"]))
        return _train(run_dir, updated, device, stop_at, resume_from=state)


def _prepare_resume(
    run_dir: Path, overrides: list[str], force: bool, held: contextlib.ExitStack, loaded: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    """Rank 0: lock the run, check the overrides and the process count, pick the checkpoint (into
    `loaded["state"]`) and record the resume; returns (config, step) for every rank."""
    held.enter_context(run_lock.hold(run_dir))
    for leftover in checkpoint.remove_temporaries(run_dir) + checkpoint.remove_temporaries(
        run_dir / runs.CHECKPOINT_DIR
    ):
        logger.debug(f"removed {leftover.name}, left by a process killed while writing it")
    config_path = run_dir / runs.CONFIG_FILE
    frozen = config_module.load(config_path)
    updated = config_module.load(config_path, overrides)
    changes = config_module.diff(frozen, updated)
    refused = [key for key in changes if key not in config_module.RUN_CONTROL_KEYS]
    if refused and not force:
        raise ConfigError(
            [
                f"--set {key}: changes what the run computes ({changes[key][0]!r} -> {changes[key][1]!r}); "
                "pass --force to change it anyway"
                for key in refused
            ]
        )
    _check_world_fits(updated)
    # Fail before the history records a resume that cannot run.
    _check_precision(updated, resolve_device(updated["train"]["device"]))
    state = newest_loadable_checkpoint(run_dir / runs.CHECKPOINT_DIR)
    _check_same_world(run_dir, state)
    step = state["step"] if state else 0
    if changes:
        runs.write_text_atomic(config_path, config_module.dump(updated))
    runs.append_history(
        run_dir,
        {
            "event": "resume",
            "time": runs.now(),
            "step": step,
            "command": runs.command_line(),
            "changes": {key: list(values) for key, values in changes.items()},
            "forced": bool(refused),
        },
    )
    if step >= updated["train"]["max_steps"]:
        logger.info(f"{run_dir.name} already finished at step {step}; raise train.max_steps with --set to go on")
    loaded["state"] = state
    return updated, step


def _warn_if_threads_changed(run_dir: Path, device: torch.device) -> None:
    """Say so when a CPU run resumes with another torch thread count than it last ran with: the
    reductions inside matmuls split differently, so the rest of the run is no longer bitwise equal
    to one that never stopped (a 2-digit run reached 1.000 exact match on 1 thread, 0.971 on 2)."""
    recorded = runs.read_meta(run_dir).get("threads")
    now = torch.get_num_threads()
    if device.type == "cpu" and recorded is not None and recorded != now:
        logger.warning(
            f"{run_dir.name} ran with {recorded} CPU thread(s) and resumes with {now}: from here on it "
            f"will not be bitwise equal to an uninterrupted run; resume with "
            f"--set train.num_threads={recorded} to keep it exact"
        )


def _check_world_fits(config: dict[str, Any]) -> None:
    """train.batch_size is the global batch: it must split evenly over the processes torchrun started."""
    world_size, batch_size = distributed.context().world_size, config["train"]["batch_size"]
    if batch_size % world_size:
        raise ConfigError(
            [
                f"train.batch_size: {batch_size} examples cannot be split evenly over the "
                f"{world_size} processes torchrun started; use a multiple of {world_size}"
            ]
        )


def _check_same_world(run_dir: Path, state: dict[str, Any] | None) -> None:
    """A run resumes on as many processes as it was trained on: each rank's RNG streams are in its checkpoint."""
    recorded = state.get("world_size", 1) if state else runs.read_meta(run_dir).get("world_size", 1)
    world_size = distributed.context().world_size
    if recorded == world_size:
        return
    how = "python run.py --resume" if recorded == 1 else f"torchrun --nproc_per_node={recorded} run.py --resume"
    raise runs.RunError(
        f"{run_dir}: trained on {recorded} process(es) but resumed on {world_size}; "
        f"resume it the way it was started: {how} {run_dir}"
    )


def newest_loadable_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The newest `step_*.pt` that loads, warning about each one skipped; None when there are none at all."""
    found = checkpoint.step_checkpoints(folder)
    for _, path in reversed(found):
        try:
            return checkpoint.load(path)
        except checkpoint.CheckpointError as error:
            logger.warning(f"skipping {error}")
    if found:
        raise checkpoint.CheckpointError(f"{folder}: none of the {len(found)} checkpoints can be loaded")
    return None


def _check_precision(config: dict[str, Any], device: torch.device) -> None:
    """Refuse a precision the device cannot run before anything is written."""
    if config["train"]["precision"] != "auto":
        check_available(config["train"]["precision"], device)


def _precision(
    config: dict[str, Any], components: Any, device: torch.device, resume_from: dict[str, Any] | None
) -> Choice:
    """The precision to train in: a resumed `auto` run keeps the one it started with (measuring
    again could choose differently and break exactness); anything else is resolved afresh."""
    requested = config["train"]["precision"]
    recorded = None
    if resume_from is not None:
        trainer_state = resume_from.get("trainer")
        # Checkpoints from before train.precision existed were trained in fp32.
        recorded = trainer_state.get("precision", "fp32") if isinstance(trainer_state, dict) else "fp32"
        if recorded not in PRECISIONS:
            raise checkpoint.CheckpointError(f"checkpoint records an unknown precision {recorded!r}")
    if requested == "auto" and recorded is not None:
        check_available(recorded, device)
        choice = Choice(recorded, "auto: the precision this run started with")
    else:
        choice = choose_precision(config, components, device)
    logger.info(f"precision {choice.name} ({choice.reason})")
    return choice


def _train(
    run_dir: Path, config: dict[str, Any], device: torch.device, stop_at: int | None, resume_from: dict[str, Any] | None
) -> int:
    """Build everything, train, and keep meta.json's status true whatever happens."""
    world = distributed.context()
    log_format = "{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}"
    sink = logger.add(run_dir / runs.LOG_FILE, level="INFO", format=log_format) if world.is_main else None
    threads = torch.get_num_threads()
    try:
        if config["train"]["num_threads"]:
            torch.set_num_threads(config["train"]["num_threads"])
        if world.is_main and resume_from is not None:
            _warn_if_threads_changed(run_dir, device)
        random.seed(config["seed"])
        np.random.seed(config["seed"])
        components = build_components(config, device)
        # Rank 0 decides (an `auto` probe could time differently on each rank) and tells the others.
        choice = distributed.from_main(lambda: _precision(config, components, device, resume_from))
        if world.world_size > 1:
            _seed_rank_streams(config["seed"], world.rank)
        start_step = resume_from["step"] if resume_from else 0
        writer = None
        parameters = components.model.num_parameters()
        if world.is_main:
            writer = SummaryWriter(str(run_dir), purge_step=start_step + 1 if resume_from else None)
            if resume_from is None:
                writer.add_text("config", "\n".join("    " + line for line in config_module.dump(config).splitlines()))
                writer.file_writer.add_summary(hparams.session_start(hparams.flat_hparams(config, parameters)))
        settings = TrainSettings.from_section(config["train"])
        trainer = Trainer(
            model=distributed.wrap(components.model, device),
            task=components.task,
            loss_fn=components.loss_fn,
            optimizer=components.optimizer,
            scheduler=components.scheduler,
            settings=dataclasses.replace(settings, batch_size=settings.batch_size // world.world_size),
            precision=MixedPrecision(choice.name, device),
            clipper=build_clipper(config["train"]),
            guard=build_loss_guard(config["train"]),
            device=device,
            checkpoint_dir=run_dir / runs.CHECKPOINT_DIR,
            config=config,
            writer=writer,
            rank=world.rank,
            world_size=world.world_size,
            on_checkpoint=(lambda state: _report_progress(run_dir, state)) if world.is_main else None,
            curriculum=components.curriculum,
        )
        if resume_from is not None:
            trainer.load_state_dict(resume_from)
            logger.info(f"resuming {run_dir.name} at step {start_step} on {device}")
        else:
            logger.info(
                f"run {run_dir.name}: {parameters:,} parameters on {device}"
                + (f", {world.world_size} processes" if world.world_size > 1 else "")
            )
        if world.is_main:
            runs.update_meta(
                run_dir,
                status="running",
                parameters=parameters,
                max_steps=settings.max_steps,
                precision={
                    "requested": config["train"]["precision"],
                    "resolved": choice.name,
                    "reason": choice.reason,
                    "probe_seconds": choice.timings,
                },
                threads=torch.get_num_threads(),
                **runs.process_owner(),
            )
        outcome = "crashed"
        try:
            outcome = status = trainer.fit(stop_at)
        finally:
            if writer is not None:
                _close_writer(writer, trainer.state, outcome)
        state = trainer.state
        if world.is_main:
            runs.update_meta(
                run_dir,
                status=status,
                step=state.step,
                max_steps=settings.max_steps,
                best_exact_match=state.best_exact_match,
                best_step=state.best_step,
                last_loss=state.last_loss,
                elapsed_seconds=round(state.elapsed_seconds, 3),
                updated=runs.now(),
            )
        logger.info(
            f"{status} at step {state.step}: best val/exact_match {state.best_exact_match:.4f} "
            f"(step {state.best_step}), {state.elapsed_seconds:.1f} s; run dir {run_dir}"
        )
        return EXIT_INTERRUPTED if status == INTERRUPTED else EXIT_OK
    except BaseException as error:
        if world.is_main and not isinstance(error, ConfigError):
            _record_crash(run_dir, error)
        raise
    finally:
        # Thread count changes float results; a run in this process (tests, notebooks) must not
        # change the next one's.
        torch.set_num_threads(threads)
        if sink is not None:
            logger.remove(sink)


def _record_crash(run_dir: Path, error: BaseException) -> None:
    """Mark meta.json crashed if the disk still lets us: on a full or read-only disk the original error matters more."""
    try:
        runs.update_meta(run_dir, status="crashed", error=f"{type(error).__name__}: {error}", updated=runs.now())
    except (OSError, runs.RunError) as meta_error:
        logger.error(f"could not record the crash in {runs.META_FILE}: {meta_error}")


def _seed_rank_streams(seed: int, rank: int) -> None:
    """Give each rank its own global RNG streams (dropout, sampling coins) after the shared weight init;
    identical streams would make every rank drop the same units. A world of one keeps the streams it had."""
    python_seed, numpy_seed, torch_seed = np.random.SeedSequence([seed, rank]).generate_state(3)
    random.seed(int(python_seed))
    np.random.seed(int(numpy_seed))
    torch.manual_seed(int(torch_seed))


def _report_progress(run_dir: Path, state: TrainerState) -> None:
    """Keep meta.json's step and losses current at every checkpoint, so `list` shows a live run's progress."""
    runs.update_meta(
        run_dir,
        step=state.step,
        last_loss=state.last_loss,
        best_exact_match=state.best_exact_match,
        best_step=state.best_step,
        elapsed_seconds=round(state.elapsed_seconds, 3),
        updated=runs.now(),
    )


def _close_writer(writer: SummaryWriter, state: TrainerState, outcome: str) -> None:
    """Attach the session's final metrics for TensorBoard's HParams tab, mark how it ended, close."""
    if state.best_exact_match >= 0:
        writer.add_scalar("summary/best_exact_match", state.best_exact_match, state.step)
    writer.add_scalar("summary/elapsed_seconds", state.elapsed_seconds, state.step)
    end = hparams.session_end(outcome)
    if end is not None:
        writer.file_writer.add_summary(end, state.step)
    writer.close()
