"""RunDir: one run directory as an object that owns its paths, config, meta.json and history, its
lock and its checkpoint folder. Torch-free, so that `list` reads runs through it in a light process;
rebuilding the trained model from the checkpoints is `runs.inference`'s business.

The functions in `runs.run_files` (file names, ids, meta.json reads and writes, lookup) stay the
primitives underneath; everything that works on one run goes through here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentrun import config as config_module
from latentrun.core.atomic import atomic_write
from latentrun.core.status import CRASHED, CREATED, RUNNING
from latentrun.runs import lock, run_files

if TYPE_CHECKING:
    from latentrun.runs.checkpoint_policy import Checkpointer
    from latentrun.train.checkpoints_protocol import State


@dataclass(frozen=True)
class RunDir:
    """`runs/<run-id>/` (the layout is contract: docs/guides/run-directory.md)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))  # RunDir("runs/x") works as RunDir(Path("runs/x"))

    @classmethod
    def create(cls, runs_dir: Path, experiment: str) -> RunDir:
        """A new, empty run directory under `runs_dir`; ids sort by creation time."""
        return cls(run_files.create_run_dir(runs_dir, experiment))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / run_files.CONFIG_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / run_files.CHECKPOINT_DIR

    @property
    def log_file(self) -> Path:
        return self.path / run_files.LOG_FILE

    # ---- config and meta.json -----------------------------------------------------------------
    def config(self, overrides: Sequence[str] = ()) -> dict[str, Any]:
        """The frozen config, validated again (and with `overrides` applied) as any experiment file is."""
        return config_module.load(self.config_file, list(overrides))

    def write_config(self, config: dict[str, Any]) -> None:
        """Freeze `config` as the run's config.yaml."""
        atomic_write(self.config_file, config_module.dump(config))

    def meta(self) -> dict[str, Any]:
        return run_files.read_meta(self.path)

    def write_meta(self, meta: dict[str, Any]) -> None:
        run_files.write_meta(self.path, meta)

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        return run_files.update_meta(self.path, **changes)

    def append_history(self, event: dict[str, Any]) -> dict[str, Any]:
        return run_files.append_history(self.path, event)

    # ---- meta.json through a run's life: every write a session makes is one of these ------------
    def record_start(self, config: dict[str, Any], world_size: int, **extra: Any) -> None:
        """meta.json of a new run: what it is, who started it and how; status created. `extra`
        adds what only some runs have (experiment_file, launch, init)."""
        self.write_meta(
            {
                "id": self.name,
                "experiment": config["experiment"],
                "experiment_file": extra.pop("experiment_file", None),
                "model": config["model"]["name"],
                "seed": config["seed"],
                "created": run_files.now(),
                "command": run_files.command_line(),
                "environment": run_files.environment(),
                "world_size": world_size,
                "status": CREATED,
                **extra,
                **run_files.process_owner(),
                "history": [
                    {"event": "start", "time": run_files.now(), "step": 0, "command": run_files.command_line()}
                ],
            }
        )

    def record_resume(self, config: dict[str, Any], step: int, changes: dict[str, list[Any]], **event: Any) -> None:
        """A resume that is sure to run: freeze the changed config, add the history event (`event`
        adds forced, lr_schedule)."""
        if changes:
            self.write_config(config)
        start = {"event": "resume", "time": run_files.now(), "step": step, "command": run_files.command_line()}
        self.append_history({**start, "changes": changes, **event})

    def record_running(self, **session: Any) -> None:
        """Status running, with what this session trains with (parameters, precision, threads, ...)."""
        self.update_meta(status=RUNNING, **session, **run_files.process_owner())

    def record_progress(self, progress: dict[str, Any], **extra: Any) -> None:
        """Step, losses and time from the trainer's state (a checkpoint's `trainer` entry, or the
        state at the end of a session), so that `list` shows a live run's progress."""
        self.update_meta(
            **extra,
            step=progress["step"],
            last_loss=progress["last_loss"],
            best_exact_match=progress["best_exact_match"],
            best_step=progress["best_step"],
            elapsed_seconds=round(progress["elapsed_seconds"], 3),
            updated=run_files.now(),
        )

    def record_end(
        self, progress: dict[str, Any], status: str, test: dict[str, float] | None = None, **extra: Any
    ) -> None:
        """How a session ended that did not crash; `test` holds the test-split figures of best.pt
        when the run finished and was graded. error=None clears an earlier crashed session's."""
        graded = {"test": _test_record(test, progress["step"])} if test is not None else {}
        self.record_progress(progress, status=status, **extra, error=None, **graded)

    def record_crash(self, error: BaseException) -> None:
        self.update_meta(status=CRASHED, error=f"{type(error).__name__}: {error}", updated=run_files.now())

    def record_tracker_error(self, tracker: str, message: str) -> None:
        """The first failure of an experiment tracker, which was dropped for the rest of the session."""
        errors = self.meta().get("tracker_errors") or {}
        self.update_meta(tracker_errors={**errors, tracker: message})

    # ---- the lock -----------------------------------------------------------------------------
    def lock(self) -> contextlib.AbstractContextManager[lock.RunLock]:
        """Hold the run for this process for the length of a with-block; RunLockedError when another has it."""
        return lock.hold(self.path)

    def holder(self) -> dict[str, Any] | None:
        """The lock record of the live process training this run, or None when none is."""
        return lock.holder(self.path)

    # ---- checkpoints ---------------------------------------------------------------------------
    # Checkpoint files are torch's: these two import it when called, not when RunDir is imported.
    def checkpointer(
        self, save_every: int = 1, keep_last: int = 1, on_save: Callable[[State], None] | None = None
    ) -> Checkpointer:
        from latentrun.runs.checkpoint_policy import Checkpointer

        return Checkpointer(self.checkpoint_dir, save_every, keep_last, on_save)

    def remove_temporaries(self) -> list[Path]:
        """Delete what writers killed mid-save left here and in checkpoints/; only while holding the lock."""
        from latentrun.runs import checkpoint_file

        return checkpoint_file.remove_temporaries(self.path) + self.checkpointer().remove_temporaries()


def _test_record(metrics: dict[str, float], step: int) -> dict[str, Any]:
    """meta.json's `test`: the test-split figures of best.pt, graded when the run finished at `step`."""
    return {
        "step": step,
        "best_step": metrics["best_step"],
        "pairs": metrics["pairs"],
        **{tag.split("/", 1)[1]: value for tag, value in metrics.items() if tag.startswith("test/")},
    }
