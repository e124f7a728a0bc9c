"""The one way latentrun replaces a file: whole or not at all, and on disk before it is used."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes | str, before_replace: Callable[[], None] | None = None) -> None:
    """Replace `path` with `data`: written to a hidden `.NAME.PID.tmp` beside it, flushed, fsynced,
    renamed into place, and the folder fsynced, so a crash at any moment leaves either the old file
    or the new one, never a torn one. `before_replace` runs once the bytes are safely on disk and
    before they appear under the real name (the checkpoint manifest learns a file's hash there).
    On any failure the temporary file is removed and `path` is left as it was."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temporary, path)
        _fsync_folder(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """`atomic_write` of `data` as indented JSON with a final newline."""
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` survive a power cut, not just a process crash."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
