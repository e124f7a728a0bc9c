"""Run directories: ids, creation, meta.json, and finding a run from what the user typed."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from latentrun.text import printable

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "train.log"
# A run id is one plain name (experiment-date-time-hex); no separators, and never '.' or '..'.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class RunError(Exception):
    """A run directory that does not exist or is not a latentrun run."""


def now() -> str:
    """The current time as an ISO-8601 string with the UTC offset, to the second."""
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def create_run_dir(runs_dir: Path, experiment: str) -> Path:
    """Make a new, empty `runs_dir/<experiment>-<time>-<hex>` folder; ids sort by creation time."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:
        run_dir = runs_dir / f"{experiment}-{stamp}-{secrets.token_hex(2)}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON without ever leaving a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` without ever leaving a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's meta.json; RunError when it is missing or unreadable."""
    path = run_dir / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RunError(f"{path}: cannot read run metadata ({error})") from None
    if not isinstance(meta, dict):
        raise RunError(f"{path}: not run metadata (a JSON object was expected)")
    return meta


def update_meta(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into meta.json and write it back atomically."""
    meta = read_meta(run_dir)
    meta.update(changes)
    write_json_atomic(run_dir / META_FILE, meta)
    return meta


def append_history(run_dir: Path, event: dict[str, Any]) -> dict[str, Any]:
    """Add one start/resume/finish event to meta.json's history."""
    meta = read_meta(run_dir)
    meta.setdefault("history", []).append(event)
    write_json_atomic(run_dir / META_FILE, meta)
    return meta


def resolve_run_dir(text: str, runs_dir: Path) -> Path:
    """A run given as a path, or as a run id under `runs_dir`; RunError when it is neither.

    Only what is typed as a path may point anywhere: an id is looked up inside `runs_dir` and must
    stay there (see `run_dir_for_id`).
    """
    as_path = Path(text)
    if (as_path / CONFIG_FILE).is_file():
        return as_path
    if RUN_ID.fullmatch(text):
        run_dir = run_dir_for_id(text, runs_dir)
        if (run_dir / CONFIG_FILE).is_file():
            return run_dir
    raise RunError(f"{printable(text)}: not a run directory (no {CONFIG_FILE} there or under {runs_dir}/)")


def run_dir_for_id(run_id: str, runs_dir: Path) -> Path:
    """`runs_dir/run_id` for an id that is one plain name and does not lead out of `runs_dir`, not even
    through a symbolic link; RunError otherwise. Every lookup of a run by id goes through here."""
    if not RUN_ID.fullmatch(run_id):
        raise RunError(f"{printable(run_id)}: not a run id (one name of letters, digits, '_', '.', '-')")
    run_dir = runs_dir / run_id
    if not run_dir.resolve().is_relative_to(runs_dir.resolve()):
        raise RunError(f"{run_id}: leads outside {runs_dir}/ (a symbolic link?); give its path instead if you mean it")
    return run_dir


def environment() -> dict[str, Any]:
    """Versions and code revision, so a result can be traced to what produced it."""
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "git": git_revision(),
    }


def git_revision() -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout latentrun runs from, or None outside git."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain"], cwd=source, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def command_line() -> list[str]:
    """The command as typed, for meta.json."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
