"""One checkpoint file on disk: atomic writes and verified, safe loads.

A checkpoint is written to a hidden temporary file in the same folder, flushed, fsynced, entered
with its SHA-256 in the folder's manifest, and renamed into place, so a crash never leaves a
half-written `step_*.pt` and every one that exists can be verified. Loading checks the bytes
against the manifest and always uses `weights_only=True`, so a file holding a pickle payload is
refused rather than executed. Which files to write and keep is the Checkpointer's business (`runs.checkpoint_policy`).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from latentrun.core.atomic import atomic_write
from latentrun.core.errors import RunError
from latentrun.runs import manifest
from latentrun.runs.checkpoint_names import (  # noqa: F401  (re-exported: callers name them checkpoint.X)
    BEST_FILE,
    EMERGENCY_FILE,
    STEP_FILE,
    step_checkpoints,
    step_file_name,
)
from latentrun.train.checkpoints_protocol import CheckpointError  # noqa: F401  (raised here, caught by callers as checkpoint_file.CheckpointError)

_READ_ATTEMPTS = 5  # each needs a save to land during the read before it; five in a row is a broken writer


def emergency_file_name(step: int) -> str:
    return f"emergency_{step:08d}.pt"


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically and record its SHA-256 in the manifest; CheckpointError when the
    disk refuses (full, read-only), with `path` and every earlier checkpoint left as they were."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The manifest learns the new bytes before they can appear under the real name, so a crash
        # at any point leaves no step_*.pt without its entry.
        atomic_write(path, data, before_replace=lambda: manifest.record(path, data))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot write checkpoint ({error.strerror or error})") from None


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU: bytes checked against the manifest, then `weights_only=True`;
    CheckpointError naming the file if it is missing, altered, truncated or not a checkpoint."""
    data = _read_verified(path)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for truncated, foreign or unsafe files
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(error).__name__}: {_first_line(error)})") from None
    if not isinstance(state, dict) or "step" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a latentrun checkpoint")
    return state


def _read_verified(path: Path) -> bytes:
    """`path`'s bytes, checked against the manifest. A writer may save the file again while it is
    read (predict during training); when the manifest changed during the read, read both again."""
    attempt = 0
    while True:
        attempt += 1
        before = manifest.version(path.parent)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{path}: cannot read checkpoint ({error.strerror or error})") from None
        try:
            manifest.verify(path, data)
            return data
        except manifest.ManifestMismatch as error:
            if attempt == _READ_ATTEMPTS or manifest.version(path.parent) == before:
                raise CheckpointError(f"{path}: {error}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


class MissingCheckpoint(RunError):
    """A checkpoint asked for by name (best, latest, step_N) that the run does not have (exit 2)."""


def find(folder: Path, which: str) -> Path:
    """The file of `best`, `latest` (the newest step checkpoint that loads) or `step_N` in a run's
    checkpoint folder; MissingCheckpoint naming the run and what it has when there is none."""
    run = folder.parent.name
    steps = step_checkpoints(folder)
    if which == "best":
        path = folder / BEST_FILE
        if not path.is_file():
            raise MissingCheckpoint(f"{run} has no best.pt yet (never evaluated); use latest")
        return path
    if which == "latest":
        for _, path in reversed(steps):
            try:
                load(path)
                return path
            except CheckpointError as error:
                logger.warning(f"skipping {error}")
        raise MissingCheckpoint(f"{run} has no step checkpoint that loads")
    step = int(which.removeprefix("step_"))
    for saved, path in steps:
        if saved == step:
            return path
    kept = ", ".join(f"step_{saved}" for saved, _ in steps) or "none"
    raise MissingCheckpoint(f"{run} has no checkpoint of step {step} (kept: {kept})")


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the hidden `.NAME.PID.tmp` files that writers killed mid-save leave behind.

    Call it only while holding the run's lock: then no live writer owns any of them."""
    if not folder.is_dir():
        return []
    leftovers = [folder / name for name in os.listdir(folder) if name.startswith(".") and name.endswith(".tmp")]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def prune(folder: Path, keep_last: int, pattern: re.Pattern = STEP_FILE) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints of a series; return what was deleted."""
    doomed = [path for _, path in step_checkpoints(folder, pattern)[:-keep_last]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
