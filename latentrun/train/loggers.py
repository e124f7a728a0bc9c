"""Where a run's metrics go: the small interface the Trainer and the session write through.

The loop only ever calls these methods; what stands behind them (TensorBoard in the run
directory, an experiment tracker, nothing at all on ranks other than 0) is decided where the run
is put together. `Loggers` fans one call out to several, so adding a tracker never touches the loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class MetricLogger(Protocol):
    """A destination for scalars, text and the hyperparameter session records of one run."""

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Record `value` for `tag` at `step`."""

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        """Record a block of text (the resolved config) for `tag`."""

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        """Record the run's hyperparameters, once, when the run is created."""

    def end_session(self, status: str, step: int) -> None:
        """Record how this session ended (a run status, see latentrun.core.status)."""

    def rewind(self, step: int) -> None:
        """The run went back to `step` (a rollback): what was logged after it will be logged again
        and supersedes the earlier values."""

    def flush(self) -> None:
        """Put everything recorded so far on disk (before a checkpoint: a resume rewinds to it)."""

    def close(self) -> None:
        """Flush and release the destination; nothing is recorded after this."""


class NullLogger:
    """Records nothing: the logger of ranks other than 0, and of benchmarks that measure the loop alone."""

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        pass

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        pass

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        pass

    def end_session(self, status: str, step: int) -> None:
        pass

    def rewind(self, step: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Loggers:
    """Several loggers behind one: every call goes to each, in order; `close` reaches every one
    even when an earlier one fails, so no destination is left open."""

    def __init__(self, loggers: Sequence[MetricLogger]) -> None:
        self.loggers = list(loggers)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        for logger in self.loggers:
            logger.add_scalar(tag, value, step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        for logger in self.loggers:
            logger.add_text(tag, text, step)

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.start_session(hparams)

    def end_session(self, status: str, step: int) -> None:
        for logger in self.loggers:
            logger.end_session(status, step)

    def rewind(self, step: int) -> None:
        for logger in self.loggers:
            logger.rewind(step)

    def flush(self) -> None:
        for logger in self.loggers:
            logger.flush()

    def close(self) -> None:
        error: BaseException | None = None
        for logger in self.loggers:
            try:
                logger.close()
            except BaseException as failure:  # close the others first, then say what went wrong
                error = error or failure
        if error is not None:
            raise error
