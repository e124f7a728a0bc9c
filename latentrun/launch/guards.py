"""What surrounds a session of training on rank 0 and every rank: the torch thread count it runs
with, the crash it records in meta.json, and the train.log it writes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from loguru import logger

from latentrun.core.errors import ConfigError, RunError
from latentrun.runs import run_files
from latentrun.runs.run_dir import RunDir
from latentrun.train import distributed

_LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}"


@contextlib.contextmanager
def thread_count(threads: int | None) -> Iterator[None]:
    """Train with `threads` torch threads (0 or None: as many as torch has), then put the count back:
    thread count changes float results, and a run in this process (tests, notebooks) must not
    change the next one's."""
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def crash_recorded(run: RunDir, record: bool = True) -> Iterator[None]:
    """Rank 0: mark meta.json crashed when the block fails, unless the failure is the command's own
    (a ConfigError), and only if the disk still lets us: on a full or read-only disk the original
    error matters more."""
    try:
        yield
    except BaseException as error:
        if record and distributed.context().is_main and not isinstance(error, ConfigError):
            try:
                run.record_crash(error)
            except (OSError, RunError) as meta_error:
                logger.error(f"could not record the crash in {run_files.META_FILE}: {meta_error}")
        raise


@contextlib.contextmanager
def log_file(run: RunDir) -> Iterator[None]:
    """Rank 0: copy the log into the run's train.log for the length of the block."""
    sink = logger.add(run.log_file, level="INFO", format=_LOG_FORMAT) if distributed.context().is_main else None
    try:
        yield
    finally:
        if sink is not None:
            logger.remove(sink)
