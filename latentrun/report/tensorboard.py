"""The TensorBoard logger: a run's scalars, config text and HParams records in its own run directory."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from torch.utils.tensorboard import SummaryWriter

from latentrun.report import hparams as records


class TensorBoardLogger:
    """`MetricLogger` writing `events.out.tfevents.*` into `run_dir`.

    `purge_step` is the first step this session will log again (a resume: the step after its
    checkpoint, or 1 when there was none): TensorBoard's reader drops what an earlier session
    logged from that step on, so a step killed before its checkpoint does not appear twice.
    """

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        _after_earlier_sessions(Path(run_dir))
        self.run_dir = Path(run_dir)
        self.earlier = set(self.run_dir.glob("events.out.tfevents.*"))
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        # The resume step itself is kept from the earlier sessions (the purge starts after it); the
        # end-of-run tags (test/*, summary/*) they logged there must not be logged again.
        self.resume_step = purge_step - 1 if purge_step else None
        self._at_resume_step: set[str] | None = None

    def _events(self) -> Any:
        """The writer's event file; SummaryWriter drops it (None) once closed."""
        events: Any = self.writer.file_writer  # torch types it as the None __init__ starts it at
        if events is None:
            raise RuntimeError("TensorBoardLogger used after close()")
        return events

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if step == self.resume_step and tag in self._logged_at_resume_step():
            return
        self.writer.add_scalar(tag, value, step)

    def _logged_at_resume_step(self) -> set[str]:
        """The scalar tags earlier sessions logged at the resume step; read once, and only by a
        session that logs there (one that grades a run stopped at its last step)."""
        if self._at_resume_step is None:
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

            self._at_resume_step = {
                value.tag
                for path in sorted(self.earlier)
                for event in EventFileLoader(str(path)).Load()
                if event.step == self.resume_step
                for value in event.summary.value
            }
        return self._at_resume_step

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        self._events().add_summary(records.session_start(hparams))

    def end_session(self, status: str, step: int) -> None:
        end = records.session_end(status)
        if end is not None:
            self._events().add_summary(end, step)

    def rewind(self, step: int) -> None:
        # The same record a SummaryWriter opened with purge_step writes: the reader keeps only
        # what came before step + 1 from the events before it.
        self._events().add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _after_earlier_sessions(run_dir: Path) -> None:
    """Wait (under a second) until this session's event file will sort after every earlier one.

    TensorBoard reads a run's event files in name order, `events.out.tfevents.<epoch second>.<host>.<pid>`:
    a resume within the same second as the stop, from a process with a smaller pid, would be read
    before the session it continues, and the earlier session's steps then look like stale data
    and are dropped."""
    seconds = []
    for path in run_dir.glob("events.out.tfevents.*"):
        field = path.name.split(".")[3]
        if field.isdigit():
            seconds.append(int(field))
    while seconds and int(time.time()) <= max(seconds):
        time.sleep(0.05)
