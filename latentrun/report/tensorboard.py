"""The TensorBoard logger: a run's scalars, config text and HParams records in its own run directory."""

from __future__ import annotations

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
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def start_session(self, hparams: Mapping[str, Any]) -> None:
        self.writer.file_writer.add_summary(records.session_start(hparams))

    def end_session(self, status: str, step: int) -> None:
        end = records.session_end(status)
        if end is not None:
            self.writer.file_writer.add_summary(end, step)

    def rewind(self, step: int) -> None:
        # The same record a SummaryWriter opened with purge_step writes: the reader keeps only
        # what came before step + 1 from the events before it.
        self.writer.file_writer.add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
