"""Warm start (`init.from`): a new run begins from another run's weights, with a fresh optimizer,
schedule, step count and curriculum.

The source is a run (directory or id) or an experiment file. A file is a stage of a staged recipe
(chain of thought, then internalization): the run of record is a finished run in the runs dir whose
resolved config is the file's with this run's seed. None yet: an unfinished one is resumed, or a
new one trained, before the warm-started run is created, so that `python run.py STAGED.yaml` alone
reproduces the whole recipe and a second call reuses what the first trained. Keys that only say
where and how fast a run computes (threads, device, loggers, checkpoint spacing) do not matter for
the match; everything that decides what is computed does, max_steps and eval_every included.

This is no resume: the new run records where its weights came from (run, checkpoint, step and the
file's SHA-256) in meta.json and otherwise starts as a new run does. Its own resume continues from
its own checkpoints and never reads the source again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from latentrun import config as config_module
from latentrun.core.status import EXIT_OK, FINISHED
from latentrun.models.protocol import TaskModel
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import run_files as runs
from latentrun.runs.run_dir import RunDir
from latentrun.task.problems import file_digest
from latentrun.train.checkpoints_protocol import CheckpointError


class WarmStartError(runs.RunError):
    """`init.from` names nothing usable: no such run or checkpoint, a cycle of stages, or weights
    that do not fit the model (a usage error, exit 2)."""


class StageStopped(Exception):
    """A stage trained for `init.from` stopped before it finished (interrupted, or --stop-at)."""

    def __init__(self, run_dir: Path, status: int) -> None:
        super().__init__(f"{run_dir.name} stopped before it finished")
        self.run_dir = run_dir
        self.status = status


@dataclass(frozen=True)
class Source:
    """The weights a warm-started run begins from, and where they were read."""

    written: str  # init.from as the config gives it
    run_dir: Path
    checkpoint: str  # best, latest or step_N
    path: Path
    state: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """meta.json's `init`: enough to find and verify the exact source file again."""
        return {
            "from": self.written,
            "run": self.run_dir.name,
            "path": str(self.run_dir.resolve()),
            "checkpoint": self.checkpoint,
            "step": int(self.state["step"]),
            "sha256": file_digest(self.path),
        }

    def describe(self) -> str:
        return f"{self.run_dir.name} ({self.path.name}, step {int(self.state['step'])})"


# (config, runs_dir, experiment file, the stages above) -> (run dir, exit status): session.start,
# passed in so that this module needs nothing of the session that calls it.
StartRun = Callable[[dict[str, Any], Path, Path, tuple[Path, ...]], tuple[Path, int]]
ResumeRun = Callable[[Path], int]


def find_source(
    config: dict[str, Any], runs_dir: Path, start: StartRun, resume: ResumeRun, stages: tuple[Path, ...] = ()
) -> Source | None:
    """The source `config["init"]` names, training its stage first when it names an experiment
    file without a finished run; None without `init.from`."""
    init = config["init"]
    written = init["from"]
    if written is None:
        return None
    if written.endswith(config_module.EXPERIMENT_SUFFIXES):
        run_dir = stage_run(Path(written), config["seed"], runs_dir, start, resume, stages)
    else:
        try:
            run_dir = runs.resolve_run_dir(written, runs_dir)
        except runs.RunError as error:
            raise WarmStartError(f"init.from: {error}") from None
    try:
        path = checkpoint.find(RunDir(run_dir).checkpoint_dir, init["checkpoint"])
        state = checkpoint.load(path)
    except (checkpoint.MissingCheckpoint, CheckpointError) as error:
        raise WarmStartError(f"init.from: {error}") from None
    return Source(written, run_dir, init["checkpoint"], path, state)


def stage_run(
    file: Path, seed: int, runs_dir: Path, start: StartRun, resume: ResumeRun, stages: tuple[Path, ...]
) -> Path:
    """The finished run of experiment `file` with `seed`: reused, resumed, or trained now."""
    if file in stages:
        cycle = " -> ".join(path.name for path in (*stages, file))
        raise WarmStartError(f"init.from: the stages name each other in a cycle: {cycle}")
    wanted = config_module.load(file, [f"seed={seed}"])
    matching = [run_dir for run_dir in runs.run_dirs(runs_dir) if _has_config(run_dir, wanted)]
    finished = [run_dir for run_dir in matching if _status(run_dir) == FINISHED]
    if finished:
        chosen = max(finished, key=runs.created_time)
        logger.info(f"init.from: reusing {chosen.name}, a finished run of {file.name} with seed {seed}")
        return chosen
    if matching:
        run_dir = max(matching, key=runs.created_time)
        holder = RunDir(run_dir).holder()
        if holder is not None:
            raise WarmStartError(
                f"init.from: {run_dir.name} ({file.name}, seed {seed}) is being trained by process "
                f"{holder.get('pid')} on {holder.get('host')}; start this run once it has finished"
            )
        logger.info(f"init.from: resuming {run_dir.name}, an unfinished run of {file.name} with seed {seed}")
        status = resume(run_dir)
    else:
        logger.info(f"init.from: no run of {file.name} with seed {seed} in {runs_dir}; training one first")
        run_dir, status = start(wanted, runs_dir, file, (*stages, file))
    if status != EXIT_OK or _status(run_dir) != FINISHED:
        raise StageStopped(run_dir, status)
    return run_dir


# Keys that say where, how fast and how verbosely a run computes, not what: a stage run that
# differs from the file only in these (trained on 2 threads, say) is still that file's run.
_INCIDENTAL_KEYS = frozenset(
    {
        "train.device",
        "train.num_threads",
        "train.loggers",
        "train.log_every",
        "train.save_every",
        "train.keep_last",
        "train.eval_batch_size",
        "train.gradient_checkpointing",
    }
)


def _has_config(run_dir: Path, wanted: dict[str, Any]) -> bool:
    try:
        changes = config_module.diff(RunDir(run_dir).config(), wanted)
    except (config_module.ConfigError, OSError):
        return False  # a damaged run is nobody's stage
    return set(changes) <= _INCIDENTAL_KEYS


def _status(run_dir: Path) -> str | None:
    try:
        return RunDir(run_dir).meta().get("status")
    except (runs.RunError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Fit:
    """How a source's tensors map onto a model: those it lacks keep their fresh initialisation
    (a new head), and training aids of the source the model was built without are left behind."""

    fresh: list[str]
    left_behind: list[str]

    def describe(self) -> str:
        return "".join(
            f"; {label}: {', '.join(names)}"
            for label, names in (("newly initialised", self.fresh), ("left behind", self.left_behind))
            if names
        )


def _is_training_aid(model: TaskModel, name: str) -> bool:
    return name.split(".", 1)[0] in model.TRAINING_AIDS


def check_fits(model: TaskModel, source: Source) -> Fit:
    """How the source fits `model`; a WarmStartError when a source tensor is one the model lacks
    (other than a training aid, such as the teacher embedding of a run trained with latent
    forcing) or of another shape: the architectures differ."""
    own = model.state_dict()
    theirs = source.state["model"]
    left_behind = [name for name in theirs if name not in own and _is_training_aid(model, name)]
    unknown = [name for name in theirs if name not in own and name not in left_behind]
    misshapen = [
        f"{name} {tuple(theirs[name].shape)} vs {tuple(own[name].shape)}"
        for name in theirs
        if name in own and tuple(theirs[name].shape) != tuple(own[name].shape)
    ]
    if unknown or misshapen:
        problems = ([f"{len(unknown)} tensor(s) this model lacks ({', '.join(unknown[:3])})"] if unknown else []) + (
            [f"{len(misshapen)} of another shape ({', '.join(misshapen[:2])})"] if misshapen else []
        )
        raise WarmStartError(f"init.from: {source.describe()} does not fit this model: {'; '.join(problems)}")
    return Fit([name for name in own if name not in theirs], left_behind)


def load_weights(model: TaskModel, source: Source) -> Fit:
    """Copy the source's weights into a freshly built `model` (see `check_fits`)."""
    fit = check_fits(model, source)
    kept = {name: tensor for name, tensor in source.state["model"].items() if name not in fit.left_behind}
    model.load_state_dict(kept, strict=False)
    return fit
