"""The final test grading of a finished run (the figure of record), made as safe as training:
SIGINT or SIGTERM during it stops the run cleanly (exit 130, the run left ungraded, `--resume`
grades it), and a best.pt that is missing or damaged is restored from the step checkpoint of the
best step, or named in one line that says what to do, never silently skipped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from loguru import logger

from latentrun.core.status import FINISHED, INTERRUPTED
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs.checkpoint_policy import Checkpointer
from latentrun.train import distributed
from latentrun.train.checkpoints_protocol import CheckpointError
from latentrun.train.trainer import Trainer


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def grade(trainer: Trainer) -> tuple[str, dict[str, float] | None]:
    """(FINISHED, the test figures of best.pt, None when the run was never evaluated), or
    (INTERRUPTED, None) when a stop signal arrives while grading."""
    if not distributed.context().is_main or threading.current_thread() is not threading.main_thread():
        return FINISHED, trainer.test_best()
    armed = True

    def stop(signum: int, frame: Any) -> None:
        if armed:
            raise _Stop(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        if isinstance(trainer.checkpointer, Checkpointer) and trainer.state.best_exact_match >= 0:
            _ensure_best(trainer.checkpointer, trainer.state.best_step)
        return FINISHED, trainer.test_best()
    except _Stop as stopped:
        logger.warning(
            f"{stopped} during the final test grading: stopping; the run is left ungraded, --resume grades it"
        )
        return INTERRUPTED, None
    finally:
        armed = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ensure_best(checkpoints: Checkpointer, best_step: int) -> None:
    """best.pt loads, or is restored from step_<best_step>.pt; CheckpointError saying what to do otherwise."""
    path = checkpoints.folder / checkpoint.BEST_FILE
    try:
        if checkpoints.best() is not None:
            return
        problem = f"{path}: missing"
    except CheckpointError as error:
        problem = str(error)
    if checkpoints.restore_best(best_step):
        logger.warning(
            f"{problem}; restored it from {checkpoint.step_file_name(best_step)}, the checkpoint of the best step"
        )
        return
    raise CheckpointError(
        f"{problem}, and {checkpoint.step_file_name(best_step)} of the best step is gone too: the test split cannot be "
        f"graded; put a copy of best.pt back and resume the run"
    )
