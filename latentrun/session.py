"""Start or resume one run: the run directory, its meta.json history, logging, and the Trainer."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loguru import logger
from torch.utils.tensorboard import SummaryWriter

from latentrun import checkpoint, config as config_module, runs
from latentrun.build import build_clipper, build_components, build_loss_guard, choose_precision, resolve_device
from latentrun.config import ConfigError
from latentrun.precision import Choice, MixedPrecision, check_available
from latentrun.trainer import INTERRUPTED, Trainer, TrainSettings

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def start(config: dict[str, Any], runs_dir: Path, stop_at: int | None = None) -> tuple[Path, int]:
    """Create a new run directory for `config` and train it; returns (run_dir, exit status)."""
    device = resolve_device(config["train"]["device"])
    _check_precision(config, device)
    run_dir = runs.create_run_dir(runs_dir, config["experiment"])
    runs.write_text_atomic(run_dir / runs.CONFIG_FILE, config_module.dump(config))
    runs.write_json_atomic(
        run_dir / runs.META_FILE,
        {
            "id": run_dir.name,
            "experiment": config["experiment"],
            "created": runs.now(),
            "command": runs.command_line(),
            "environment": runs.environment(),
            "status": "created",
            "history": [{"event": "start", "time": runs.now(), "step": 0, "command": runs.command_line()}],
        },
    )
    return run_dir, _train(run_dir, config, device, stop_at, resume_from=None)


def resume(run_dir: Path, overrides: list[str], force: bool = False, stop_at: int | None = None) -> int:
    """Continue a run from its newest loadable checkpoint, exactly as if it had never stopped."""
    config_path = run_dir / runs.CONFIG_FILE
    frozen = config_module.load(config_path)
    updated = config_module.load(config_path, overrides)
    changes = config_module.diff(frozen, updated)
    refused = [key for key in changes if key not in config_module.RUN_CONTROL_KEYS]
    if refused and not force:
        raise ConfigError([
            f"--set {key}: changes what the run computes ({changes[key][0]!r} -> {changes[key][1]!r}); "
            "pass --force to change it anyway" for key in refused
        ])
    device = resolve_device(updated["train"]["device"])
    _check_precision(updated, device)
    state = newest_loadable_checkpoint(run_dir / runs.CHECKPOINT_DIR)
    step = state["step"] if state else 0
    if changes:
        runs.write_text_atomic(config_path, config_module.dump(updated))
    runs.append_history(run_dir, {
        "event": "resume", "time": runs.now(), "step": step, "command": runs.command_line(),
        "changes": {key: list(values) for key, values in changes.items()}, "forced": bool(refused),
    })
    if step >= updated["train"]["max_steps"]:
        logger.info(f"{run_dir.name} already finished at step {step}; raise train.max_steps with --set to go on")
        return EXIT_OK
    return _train(run_dir, updated, device, stop_at, resume_from=state)


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


def _precision(config: dict[str, Any], components: Any, device: torch.device,
               resume_from: dict[str, Any] | None) -> Choice:
    """The precision to train in: a resumed `auto` run keeps the one it started with (measuring
    again could choose differently and break exactness); anything else is resolved afresh."""
    requested = config["train"]["precision"]
    recorded = (resume_from or {}).get("trainer", {}).get("precision", "fp32" if resume_from else None)
    if requested == "auto" and recorded is not None:
        check_available(recorded, device)
        choice = Choice(recorded, "auto: the precision this run started with")
    else:
        choice = choose_precision(config, components, device)
    logger.info(f"precision {choice.name} ({choice.reason})")
    return choice


def _train(run_dir: Path, config: dict[str, Any], device: torch.device, stop_at: int | None,
           resume_from: dict[str, Any] | None) -> int:
    """Build everything, train, and keep meta.json's status true whatever happens."""
    sink = logger.add(run_dir / runs.LOG_FILE, level="INFO", format="{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}")
    try:
        if config["train"]["num_threads"]:
            torch.set_num_threads(config["train"]["num_threads"])
        random.seed(config["seed"])
        np.random.seed(config["seed"])
        components = build_components(config, device)
        choice = _precision(config, components, device, resume_from)
        start_step = resume_from["step"] if resume_from else 0
        writer = SummaryWriter(str(run_dir), purge_step=start_step + 1 if resume_from else None)
        if resume_from is None:
            writer.add_text("config", "\n".join("    " + line for line in config_module.dump(config).splitlines()))
        trainer = Trainer(
            model=components.model, task=components.task, loss_fn=components.loss_fn,
            optimizer=components.optimizer, scheduler=components.scheduler,
            settings=TrainSettings.from_section(config["train"]), precision=MixedPrecision(choice.name, device),
            clipper=build_clipper(config["train"]), guard=build_loss_guard(config["train"]), device=device,
            checkpoint_dir=run_dir / runs.CHECKPOINT_DIR, config=config, writer=writer,
        )
        if resume_from is not None:
            trainer.load_state_dict(resume_from)
            logger.info(f"resuming {run_dir.name} at step {start_step} on {device}")
        else:
            logger.info(f"run {run_dir.name}: {components.model.num_parameters():,} parameters on {device}")
        runs.update_meta(run_dir, status="running", parameters=components.model.num_parameters(),
                         precision={"requested": config["train"]["precision"], "resolved": choice.name,
                                    "reason": choice.reason, "probe_seconds": choice.timings})
        try:
            status = trainer.fit(stop_at)
        finally:
            writer.close()
        state = trainer.state
        runs.update_meta(run_dir, status=status, step=state.step, max_steps=trainer.settings.max_steps,
                         best_exact_match=state.best_exact_match, best_step=state.best_step,
                         elapsed_seconds=round(state.elapsed_seconds, 3), updated=runs.now())
        logger.info(f"{status} at step {state.step}: best val/exact_match {state.best_exact_match:.4f} "
                    f"(step {state.best_step}), {state.elapsed_seconds:.1f} s; run dir {run_dir}")
        return EXIT_INTERRUPTED if status == INTERRUPTED else EXIT_OK
    except BaseException as error:
        if not isinstance(error, ConfigError):
            runs.update_meta(run_dir, status="crashed", error=f"{type(error).__name__}: {error}", updated=runs.now())
        raise
    finally:
        logger.remove(sink)

