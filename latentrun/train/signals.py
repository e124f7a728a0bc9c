"""Stop requests: SIGINT and SIGTERM raise a flag that the step loop reads between steps.

A signal never interrupts a step halfway: the loop finishes the step it is in, checkpoints it and
stops, so an interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any


class StopSignals:
    """While entered, SIGINT and SIGTERM set `received` instead of stopping the process; the
    previous handlers come back on exit. Outside the main thread signals stay with their owner."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self.received = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._request_stop)
            except ValueError:  # not the main thread: leave signals to whoever owns them
                pass
        return self

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
