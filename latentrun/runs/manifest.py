"""The checkpoint manifest: the SHA-256 and size each checkpoint file must have.

`checkpoints/manifest.json` maps file names to `{"sha256", "bytes", "recorded"}`. A checkpoint's
entry is written (atomically, fsynced) *before* the checkpoint is renamed into place, so every
`step_*.pt` that exists has its entry, whenever the writer died. Resume checks each candidate
against its entry, which catches what a successful `torch.load` would not: flipped bits inside a
tensor, a file swapped for another run's, a copy truncated at a block boundary.

A name written again (best.pt) keeps the entry of the bytes it replaces under `replaces`: between
the manifest update and the rename, the old bytes are still the ones under that name, and a
reader (predict, eval, compare during training) that reads them then must not call them altered.
A reader that races more than one save sees the manifest change under it and reads again.

Only one process writes a run's manifest at a time: the run-directory lock holder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from loguru import logger

from latentrun.core.atomic import atomic_write
from latentrun.runs.run_files import now

MANIFEST_FILE = "manifest.json"
FORMAT = 1


class ManifestMismatch(Exception):
    """A checkpoint whose bytes are not the ones recorded for it."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(folder: Path) -> dict[str, dict[str, Any]] | None:
    """File name → entry; None when the folder has no manifest (a run from before manifests)."""
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        # Atomic writes mean a crash cannot do this; something else damaged it. The checkpoints may
        # be fine, so say so and fall back to what weights_only loading alone can check.
        logger.warning(f"{path}: unreadable ({type(error).__name__}); checkpoints cannot be verified against it")
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        logger.warning(f"{path}: not a checkpoint manifest; checkpoints cannot be verified against it")
        return None
    return {name: entry for name, entry in files.items() if isinstance(entry, dict)}


def record(path: Path, data: bytes) -> None:
    """Enter `path`'s name with the SHA-256 and size of `data` (the bytes about to be renamed into place),
    dropping entries whose files are gone; the manifest is replaced atomically and fsynced."""
    folder = path.parent
    files = {name: entry for name, entry in (read(folder) or {}).items() if (folder / name).exists()}
    entry: dict[str, Any] = {"sha256": sha256(data), "bytes": len(data), "recorded": now()}
    previous = files.get(path.name)
    if previous is not None:
        entry["replaces"] = {key: previous.get(key) for key in ("sha256", "bytes")}
    files[path.name] = entry
    atomic_write(
        folder / MANIFEST_FILE, json.dumps({"format": FORMAT, "files": dict(sorted(files.items()))}, indent=1) + "\n"
    )


def version(folder: Path) -> tuple[int, int] | None:
    """What identifies one state of the folder's manifest (every write replaces the file, so a new inode)."""
    try:
        status = (folder / MANIFEST_FILE).stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def verify(path: Path, data: bytes) -> bool:
    """Check `data` (the bytes read from `path`) against the manifest: True when verified, False when
    the folder has no manifest to check against; ManifestMismatch when it is not what was recorded."""
    files = read(path.parent)
    if files is None:
        return False
    entry = files.get(path.name)
    if entry is None:
        raise ManifestMismatch(f"not recorded in {MANIFEST_FILE} (not written by this run, or its save never finished)")
    actual = sha256(data)
    replaced = entry.get("replaces")
    if isinstance(replaced, dict) and replaced.get("bytes") == len(data) and replaced.get("sha256") == actual:
        return True  # the bytes a save in progress is about to replace: whole, and this run's
    if entry.get("bytes") != len(data):
        raise ManifestMismatch(
            f"truncated or altered: {len(data)} bytes, {MANIFEST_FILE} recorded {entry.get('bytes')}"
        )
    if entry.get("sha256") != actual:
        raise ManifestMismatch(
            f"altered: SHA-256 {actual[:16]}... differs from the {str(entry.get('sha256'))[:16]}... "
            f"recorded in {MANIFEST_FILE}"
        )
    return True
