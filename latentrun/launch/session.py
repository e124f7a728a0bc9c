"""Start or resume one run: the run directory, its lock and meta.json history, logging, and the Trainer.

Under torchrun every rank calls `start` or `resume`; rank 0 alone creates, locks and writes the run
directory and hands the others what they need (the run dir, the config, the checkpoint step).

A resume writes nothing into the run directory until its checkpoint has loaded into the model
the (possibly changed) config builds: one that cannot load leaves the run as it found it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from loguru import logger

from latentrun import config as config_module
from latentrun.config import ConfigError
from latentrun.config.build import (
    build_components,
    build_model,
    build_task,
    build_trainer,
    choose_precision,
    resolve_device,
)
from latentrun.core.status import (
    CRASHED,
    CREATED,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FINISHED,
    INTERRUPTED,
    RUNNING,
)
from latentrun.launch import grading, warmstart
from latentrun.report import hparams
from latentrun.report.tensorboard import TensorBoardLogger
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import run_files as runs
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed
from latentrun.train.components import Components
from latentrun.train.loggers import Loggers, MetricLogger
from latentrun.train.precision import PRECISIONS, Choice, check_available
from latentrun.train.trainer import Trainer, TrainerState

_LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}"


@dataclass(frozen=True)
class Resume:
    """What rank 0 decided for a resume, for every rank: the config to go on with, the step of the
    checkpoint to load (0 for none yet), and the config changes to record once it has loaded."""

    config: dict[str, Any]
    step: int
    changes: dict[str, list[Any]]
    forced: bool  # some change alters what is computed, allowed by --force
    tested: bool  # meta.json holds the test-split grade of the checkpoint's step


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
    _check_precision(config, device)
    _check_trackers(config)
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
    _check_world_fits(config)
    run = RunDir.create(runs_dir, config["experiment"])
    held.enter_context(run.lock())
    run.write_config(config)
    run.write_meta(
        {
            "id": run.name,
            "experiment": config["experiment"],
            "experiment_file": str(Path(experiment_file).resolve()) if experiment_file else None,
            "model": config["model"]["name"],
            "seed": config["seed"],
            "created": runs.now(),
            "command": runs.command_line(),
            "environment": runs.environment(),
            "world_size": distributed.context().world_size,
            "status": CREATED,
            **(launch or {}),
            **({"init": source.record()} if source is not None else {}),
            **runs.process_owner(),
            "history": [{"event": "start", "time": runs.now(), "step": 0, "command": runs.command_line()}],
        }
    )
    return run


def resume(run_dir: Path, overrides: list[str], force: bool = False, stop_at: int | None = None) -> int:
    """Continue a run from its newest loadable checkpoint, exactly as if it had never stopped."""
    run = RunDir(run_dir)
    with contextlib.ExitStack() as held:
        loaded: dict[str, Any] = {}
        plan = distributed.from_main(lambda: _plan_resume(run, overrides, force, held, loaded, stop_at))
        if plan.step >= plan.config["train"]["max_steps"] and plan.tested:
            distributed.from_main(lambda: _record_resume(run, plan))
            logger.info(f"{run.name} already finished at step {plan.step}; raise train.max_steps with --set to go on")
            return EXIT_OK
        if distributed.context().is_main:
            state = loaded["state"]
        else:  # the file rank 0 chose and verified; each rank reads it for itself
            state = run.checkpointer().load(plan.step) if plan.step else None
        device = distributed.local_device(resolve_device(plan.config["train"]["device"]))
        return _train(run, plan.config, device, stop_at, plan, state)


def _plan_resume(
    run: RunDir,
    overrides: list[str],
    force: bool,
    held: contextlib.ExitStack,
    loaded: dict[str, Any],
    stop_at: int | None = None,
) -> Resume:
    """Rank 0: lock the run, check the overrides, the process count and --stop-at, and pick the
    checkpoint (into `loaded["state"]`); writes nothing but the removal of dead writers' temporary files."""
    held.enter_context(run.lock())
    for leftover in run.remove_temporaries():
        logger.debug(f"removed {leftover.name}, left by a process killed while writing it")
    frozen, updated = run.config(), run.config(overrides)
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
    _check_precision(updated, resolve_device(updated["train"]["device"]))
    _check_trackers(updated)
    state = run.checkpointer().newest()
    _check_same_world(run, state)
    step = state["step"] if state else 0
    # It would stop at once and say nothing. A finished run trains nothing anyway: that stays allowed.
    if stop_at is not None and stop_at <= step < updated["train"]["max_steps"]:
        raise runs.RunError(
            f"--stop-at {stop_at}: {run.name} is already at step {step}; give a later step, "
            f"or leave --stop-at out to train on to train.max_steps ({updated['train']['max_steps']})"
        )
    loaded["state"] = state
    # A finished run that was never graded (killed during its final test, or older than the test
    # split) resumes only to be graded.
    tested = (run.meta().get("test") or {}).get("step") == step
    if step >= updated["train"]["max_steps"] and not tested:
        logger.info(f"{run.name} was never graded on its test split at step {step}: grading it now")
    recorded = {key: list(values) for key, values in changes.items()}
    return Resume(updated, step, recorded, bool(refused), tested)


def _record_resume(run: RunDir, plan: Resume) -> None:
    """Rank 0, once the resume is sure to run: freeze the changed config and add the history event."""
    if plan.changes:
        run.write_config(plan.config)
    event = {"event": "resume", "time": runs.now(), "step": plan.step, "command": runs.command_line()}
    run.append_history({**event, "changes": plan.changes, "forced": plan.forced})


def _train(
    run: RunDir,
    config: dict[str, Any],
    device: torch.device,
    stop_at: int | None,
    resume: Resume | None = None,
    state: dict[str, Any] | None = None,
    source: warmstart.Source | None = None,
) -> int:
    """Build the trainer and load the checkpoint, then (only then) write to the run dir, train,
    and keep meta.json's status true whatever happens."""
    world = distributed.context()
    threads = torch.get_num_threads()
    sink, writing = None, False
    try:
        trainer, choice, parameters = _build(run, config, device, state, source)
        writing = True
        if world.is_main:
            sink = logger.add(run.log_file, level="INFO", format=_LOG_FORMAT)
            logger.info(f"precision {choice.name} ({choice.reason})")
        if world.is_main:
            trainer.metric_logger = _metric_loggers(config, run, resume)

        def begin() -> None:
            distributed.from_main(lambda: _begin_session(run, config, device, resume, choice, parameters))
            if resume is not None:
                logger.info(f"resuming {run.name} at step {resume.step} on {device}")
            else:
                processes = f", {world.world_size} processes" if world.world_size > 1 else ""
                logger.info(f"run {run.name}: {parameters:,} parameters on {device}{processes}")

        status, test = _fit(trainer, config, parameters, stop_at, resume is None, begin)
        if world.is_main:
            progress = dataclasses.asdict(trainer.state)
            graded = {"test": _test_record(test, trainer.state.step)} if test is not None else {}
            # error=None: a session that ends cleanly clears what an earlier crashed one recorded.
            _report_progress(run, progress, status=status, max_steps=trainer.settings.max_steps, error=None, **graded)
        trainer_state = trainer.state
        best = (
            f"best val/exact_match {trainer_state.best_exact_match:.4f} (step {trainer_state.best_step})"
            if trainer_state.best_exact_match >= 0
            else "not evaluated yet"  # best_exact_match is -1 until the first evaluation
        )
        logger.info(
            f"{status} at step {trainer_state.step}: {best}, {trainer_state.elapsed_seconds:.1f} s; run dir {run.path}"
        )
        return EXIT_INTERRUPTED if status == INTERRUPTED else EXIT_OK
    except BaseException as error:
        # A forced resume whose checkpoint does not fit is the command's mistake, not the run's.
        untouched = not writing and resume is not None and resume.forced
        if world.is_main and not isinstance(error, ConfigError) and not untouched:
            _record_crash(run, error)
        raise
    finally:
        # Thread count changes float results; a run in this process (tests, notebooks) must not
        # change the next one's.
        torch.set_num_threads(threads)
        if sink is not None:
            logger.remove(sink)


def _begin_session(
    run: RunDir, config: dict[str, Any], device: torch.device, resume: Resume | None, choice: Choice, parameters: int
) -> None:
    """Rank 0, once the trainer stands: record the resume and mark the run running."""
    if resume is not None:
        _warn_if_threads_changed(run, device)
        _record_resume(run, resume)
    run.update_meta(
        status=RUNNING,
        parameters=parameters,
        max_steps=config["train"]["max_steps"],
        precision={
            "requested": config["train"]["precision"],
            "resolved": choice.name,
            "reason": choice.reason,
            "probe_seconds": choice.timings,
        },
        threads=torch.get_num_threads(),
        **runs.process_owner(),
    )


def _build(
    run: RunDir,
    config: dict[str, Any],
    device: torch.device,
    state: dict[str, Any] | None,
    source: warmstart.Source | None = None,
) -> tuple[Trainer, Choice, int]:
    """(trainer with `state` loaded, or a new one with `source`'s weights, its precision, the
    parameter count), writing nothing anywhere."""
    world = distributed.context()
    if config["train"]["num_threads"]:
        torch.set_num_threads(config["train"]["num_threads"])
    random.seed(config["seed"])
    np.random.seed(config["seed"])
    components = build_components(config, device)
    if state is None and source is not None:
        fresh = warmstart.load_weights(components.model, source)
        logger.info(
            f"warm start from {source.describe()}" + (f"; newly initialised: {', '.join(fresh)}" if fresh else "")
        )
    # Rank 0 decides (an `auto` probe could time differently on each rank) and tells the others.
    choice = distributed.from_main(lambda: _precision(config, components, device, state))
    if world.world_size > 1:
        _seed_rank_streams(config["seed"], world.rank)
    parameters = components.model.num_parameters()  # type: ignore[operator]  # nn.Module's __getattr__ hides the model's own methods
    train = config["train"]
    # Each checkpoint also brings meta.json up to date, so that `list` shows a live run's progress.
    checkpointer = run.checkpointer(
        train["save_every"], train["keep_last"], lambda saved: _report_progress(run, saved["trainer"])
    )
    trainer = build_trainer(config, components, device, choice.name, checkpointer)
    if state is not None:
        trainer.load_state_dict(state)
    return trainer, choice, parameters


def _fit(
    trainer: Trainer,
    config: dict[str, Any],
    parameters: int,
    stop_at: int | None,
    first_session: bool,
    begin: Callable[[], None],
) -> tuple[str, dict[str, float] | None]:
    """`trainer.fit` with its metric logger opened for the session and closed whatever happens;
    a finished run also grades its best checkpoint on the test split (None when it has none).

    `begin` marks the run running only once the session's records are on disk: a run killed right
    after (the out-of-memory killer) still shows in TensorBoard's HParams, as a session that never ended.
    """
    metric_logger, outcome = trainer.metric_logger, CRASHED
    try:
        if first_session:
            metric_logger.add_text(
                "config", "\n".join("    " + line for line in config_module.dump(config).splitlines())
            )
            metric_logger.start_session(hparams.flat_hparams(config, parameters))
        metric_logger.flush()
        begin()
        outcome = trainer.fit(stop_at)
        if outcome != FINISHED:
            return outcome, None
        outcome = CRASHED  # until graded: a grading that fails ends the session as crashed
        outcome, test = grading.grade(trainer)  # INTERRUPTED when stopped while grading
        return outcome, test
    finally:
        _close_logger(metric_logger, trainer.state, outcome)


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


def _check_same_world(run: RunDir, state: dict[str, Any] | None) -> None:
    """A run resumes on as many processes as it was trained on: each rank's RNG streams are in its checkpoint."""
    recorded = state.get("world_size", 1) if state else run.meta().get("world_size", 1)
    world_size = distributed.context().world_size
    if recorded == world_size:
        return
    how = "python run.py --resume" if recorded == 1 else f"torchrun --nproc_per_node={recorded} run.py --resume"
    raise runs.RunError(
        f"{run.path}: trained on {recorded} process(es) but resumed on {world_size}; "
        f"resume it the way it was started: {how} {run.path}"
    )


def _check_trackers(config: dict[str, Any]) -> None:
    """Refuse a tracker whose package is missing before a run directory is made."""
    if set(config["train"]["loggers"]) - {"tensorboard"}:
        from latentrun.report import trackers

        trackers.check_available(config["train"]["loggers"])


def _check_precision(config: dict[str, Any], device: torch.device) -> None:
    """Refuse a precision the device cannot run before anything is written."""
    if config["train"]["precision"] != "auto":
        check_available(config["train"]["precision"], device)


def _precision(
    config: dict[str, Any], components: Components, device: torch.device, resume_from: dict[str, Any] | None
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
        return Choice(recorded, "auto: the precision this run started with")
    return choose_precision(config, components, device)


def _record_crash(run: RunDir, error: BaseException) -> None:
    """Mark meta.json crashed if the disk still lets us: on a full or read-only disk the original error matters more."""
    try:
        run.update_meta(status=CRASHED, error=f"{type(error).__name__}: {error}", updated=runs.now())
    except (OSError, runs.RunError) as meta_error:
        logger.error(f"could not record the crash in {runs.META_FILE}: {meta_error}")


def _test_record(metrics: dict[str, float], step: int) -> dict[str, Any]:
    """meta.json's `test`: the test-split figures of best.pt, graded when the run finished at `step`."""
    return {
        "step": step,
        "best_step": metrics["best_step"],
        "pairs": metrics["pairs"],
        **{tag.split("/", 1)[1]: value for tag, value in metrics.items() if tag.startswith("test/")},
    }


def _seed_rank_streams(seed: int, rank: int) -> None:
    """Give each rank its own global RNG streams (dropout, sampling coins) after the shared weight init;
    identical streams would make every rank drop the same units. A world of one keeps the streams it had."""
    python_seed, numpy_seed, torch_seed = np.random.SeedSequence([seed, rank]).generate_state(3)
    random.seed(int(python_seed))
    np.random.seed(int(numpy_seed))
    torch.manual_seed(int(torch_seed))


def _report_progress(run: RunDir, progress: dict[str, Any], **extra: Any) -> None:
    """Bring meta.json's step, losses and time up to date from the trainer's state (a checkpoint's
    `trainer` entry, or the state at the end of a session)."""
    run.update_meta(
        **extra,
        step=progress["step"],
        last_loss=progress["last_loss"],
        best_exact_match=progress["best_exact_match"],
        best_step=progress["best_step"],
        elapsed_seconds=round(progress["elapsed_seconds"], 3),
        updated=runs.now(),
    )


def _metric_loggers(config: dict[str, Any], run: RunDir, resume: Resume | None) -> MetricLogger:
    """Rank 0: the loggers `train.loggers` names, behind one MetricLogger."""
    chosen: list[MetricLogger] = []
    for name in config["train"]["loggers"]:
        if name == "tensorboard":
            # A resume purges what an earlier session logged after its checkpoint (all of it, when
            # it stopped before the first); config and HParams belong to the run, written once.
            chosen.append(TensorBoardLogger(run.path, purge_step=resume.step + 1 if resume else None))
        else:
            from latentrun.report import trackers

            chosen.append(trackers.TRACKERS[name](run.path, config["experiment"], resume is not None))
    return chosen[0] if len(chosen) == 1 else Loggers(chosen)


def _close_logger(metric_logger: MetricLogger, state: TrainerState, outcome: str) -> None:
    """Attach the session's final metrics for TensorBoard's HParams tab, mark how it ended, close."""
    try:
        if state.best_exact_match >= 0:
            metric_logger.add_scalar("summary/best_exact_match", state.best_exact_match, state.step)
        metric_logger.add_scalar("summary/elapsed_seconds", state.elapsed_seconds, state.step)
        metric_logger.end_session(outcome, state.step)
    finally:
        metric_logger.close()
