"""The run-directory lock: one process at a time may train a run.

`RUN_DIR/lock` holds JSON `{"pid", "host", "pid_start", "started"}` naming the holder, so that a
refused process, `list`, or a person can say who has the run. Exclusion itself comes from an
advisory `flock` on that file, which the kernel drops when the holder dies however it dies
(SIGKILL, the OOM killer, a crash). A lock file whose flock is free is therefore
stale by construction: it is taken over with a warning. That also covers a recycled PID, which a
check of the recorded PID alone would mistake for a live holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from latentrun.core.text import printable
from latentrun.runs.run_files import LOCK_FILE, RunError, now, process_owner

_BUSY_RETRIES = 10  # `holder()` probes with a brief shared flock; don't mistake such a probe for a holder


class RunLockedError(RunError):
    """Another live process holds the run directory."""


class RunLock:
    """A held lock; `release()` (or leaving `hold`) gives it back."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Delete the lock file, then drop the flock: a waiter that opened the old file sees it unlinked and retries."""
        if self._descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._descriptor)
        self._descriptor = None


def acquire(run_dir: Path) -> RunLock:
    """Lock `run_dir` for this process, taking over a stale lock; RunLockedError naming the live holder otherwise."""
    path = run_dir / LOCK_FILE
    busy = 0
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            os.close(descriptor)
            busy += 1
            if busy < _BUSY_RETRIES:
                time.sleep(0.02)
                continue
            raise RunLockedError(
                f"{run_dir}: in use by {describe(holder)} (lock file {path}); "
                "wait for that process to end or stop it, then try again"
            ) from None
        # The previous holder may have unlinked the file between our open and our flock; a lock on
        # an unlinked file excludes nobody, so start again on whatever file the path names now.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(descriptor).st_ino:
            os.close(descriptor)
            continue
        if os.fstat(descriptor).st_size:  # left by a holder that died without releasing it
            from loguru import logger  # here, not at the top: `list` asks holder() and starts without loguru

            logger.warning(
                f"{run_dir}: taking over the stale lock of {describe(_read(descriptor))}, which no longer runs"
            )
        # pid_start (the kernel's start time of the pid) lets readers that only look, such as `list`,
        # tell this process from a later one that reuses its pid.
        record = json.dumps({**process_owner(), "started": now()}).encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record + b"\n", 0)
        os.fsync(descriptor)
        return RunLock(path, descriptor)


@contextlib.contextmanager
def hold(run_dir: Path) -> Iterator[RunLock]:
    """`acquire` for the length of a with-block."""
    held = acquire(run_dir)
    try:
        yield held
    finally:
        held.release()


def holder(run_dir: Path) -> dict[str, Any] | None:
    """The lock record of the process that holds `run_dir` now, or None when nobody does (no file, or a stale one).

    For telling a running run from a crashed one: a crashed run leaves its lock file behind, but not its flock.
    """
    path = run_dir / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            # A shared probe: it never blocks the holder's exclusive lock, and cannot be mistaken for one.
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(descriptor) or {}
        return None
    finally:
        os.close(descriptor)


def describe(record: dict[str, Any] | None) -> str:
    """'pid 123 on host h (since T)' from a lock record, tolerating a damaged one."""
    if not record:
        return "another process (its lock record is empty or damaged)"
    pid, host, started = (printable(record.get(key, "?")) for key in ("pid", "host", "started"))
    return f"pid {pid} on host {host} (since {started})"


def _read(descriptor: int) -> dict[str, Any]:
    """The JSON record in the lock file; {} for an empty or damaged one, which still names no process."""
    try:
        data = os.pread(descriptor, 4096, 0)
        record = json.loads(data.decode("utf-8", errors="replace")) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
