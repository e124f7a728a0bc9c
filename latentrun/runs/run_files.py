"""The files of run directories, below RunDir: their names, run ids and creating a run's folder,
meta.json reads and writes (with the owner and environment records it holds), and finding a run
from what the user typed (a path, an id, `latest`). Torch-free; `runs.run_dir.RunDir` is the
object built on top of these.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from latentrun.core.atomic import atomic_write_json
from latentrun.core.errors import RunError as RunError  # defined there, still importable from here
from latentrun.core.text import printable
from latentrun.runs import records

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "train.log"
LOCK_FILE = "lock"  # written by the process that trains the run: JSON with its pid and host
LATEST = "latest"  # what --resume (and any RUN argument) accepts for the newest run in the runs dir


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


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's meta.json; RunError when it is missing, unreadable, or a field is damaged
    (schemas/meta.schema.json)."""
    path = run_dir / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RunError(f"{path}: cannot read run metadata ({error})") from None
    if not isinstance(meta, dict):
        raise RunError(f"{path}: not run metadata (a JSON object was expected)")

    records.check(meta, records.META_SCHEMA, path)
    return meta


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace meta.json with `meta`, atomically."""
    atomic_write_json(run_dir / META_FILE, meta)


def update_meta(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into meta.json and write it back atomically."""
    meta = _meta_to_update(run_dir)
    meta.update(changes)
    write_meta(run_dir, meta)
    return meta


def _meta_to_update(run_dir: Path) -> dict[str, Any]:
    """meta.json for a read-modify-write; a run directory that vanished (deleted while it trained) is
    a runtime failure, FileNotFoundError, like any other write into it, not a user's mistake."""
    gone = FileNotFoundError(errno.ENOENT, "the run directory is gone (deleted while the run trained?)", str(run_dir))
    if not run_dir.is_dir():
        raise gone
    try:
        return read_meta(run_dir)
    except RunError:
        # A deletion in progress removes meta.json before the folder: the same vanishing run.
        if not (run_dir / META_FILE).exists():
            raise gone from None
        raise


def append_history(run_dir: Path, event: dict[str, Any]) -> dict[str, Any]:
    """Add one start/resume/finish event to meta.json's history."""
    meta = _meta_to_update(run_dir)
    meta.setdefault("history", []).append(event)
    write_meta(run_dir, meta)
    return meta


def resolve_run_dir(text: str, runs_dir: Path) -> Path:
    """A run given as a path, as an id under `runs_dir`, or as `latest`; RunError when it is none of these.

    Only what is typed as a path may point anywhere: an id is a plain folder name (anything with a
    path separator or `..` is only ever taken as a path) looked up inside `runs_dir`, and it must
    stay there (see `run_dir_for_id`).
    """
    if "\0" in text:
        raise RunError(f"{printable(text)}: not a run directory (contains a NUL byte)")
    if text == LATEST:
        return latest_run(runs_dir)
    as_path = Path(text)
    if _holds_config(as_path):
        return as_path
    if is_plain_id(text):
        run_dir = run_dir_for_id(text, runs_dir)
        if _holds_config(run_dir):
            return run_dir
    raise RunError(f"{printable(text)}: not a run directory (no {CONFIG_FILE} there or under {runs_dir}/)")


def _holds_config(path: Path) -> bool:
    try:
        return (path / CONFIG_FILE).is_file()
    except OSError:  # a name the file system refuses (too long: a 300-digit problem) names no run
        return False


def run_dir_for_id(run_id: str, runs_dir: Path) -> Path:
    """`runs_dir/run_id` for a plain id that does not lead out of `runs_dir`, not even through a
    symbolic link; RunError otherwise. Every lookup of a run by id goes through here."""
    if not is_plain_id(run_id):
        raise RunError(f"{printable(run_id)}: not a run id (one folder name, no path separators)")
    run_dir = runs_dir / run_id
    if not run_dir.resolve().is_relative_to(runs_dir.resolve()):
        raise RunError(
            f"{printable(run_id)}: leads outside {runs_dir}/ (a symbolic link?); give its path instead if you mean it"
        )
    return run_dir


def is_plain_id(text: str) -> bool:
    """True for a bare folder name, the only form of run id joined onto the runs dir."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return bool(text) and text not in (".", "..") and not any(sep in text for sep in separators)


def run_dirs(runs_dir: Path) -> list[Path]:
    """Every run directory directly under `runs_dir` (those holding a config.yaml), by name."""
    if not runs_dir.is_dir():
        return []
    return sorted(path for path in runs_dir.iterdir() if (path / CONFIG_FILE).is_file())


def created_time(run_dir: Path) -> dt.datetime:
    """When the run was created: meta.json's `created`, else config.yaml's modification time."""
    try:
        created = dt.datetime.fromisoformat(read_meta(run_dir)["created"])
        return created if created.tzinfo else created.astimezone()  # naive means local time
    except (RunError, KeyError, TypeError, ValueError):
        stamp = (run_dir / CONFIG_FILE).stat().st_mtime
        return dt.datetime.fromtimestamp(stamp, dt.timezone.utc)


def latest_run(runs_dir: Path) -> Path:
    """The most recently created run under `runs_dir`; RunError when there is none."""
    found = run_dirs(runs_dir)
    if not found:
        raise RunError(f"{LATEST}: no runs under {runs_dir}/")
    newest = max(found, key=lambda path: (created_time(path), path.name))
    try:
        return run_dir_for_id(newest.name, runs_dir)  # the containment rule of ids: no way out through a link
    except RunError as error:
        raise RunError(f"{LATEST}: the newest run, {error}") from None


def process_owner() -> dict[str, Any]:
    """Who is training a run, for meta.json: pid, host and the process's start time, so that a
    later reader can tell a live run from one whose process died (or whose pid was reused)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _process_start(os.getpid())}


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """Whether the process recorded by `process_owner` (or a lock file) still runs; None when it ran
    on another host, where this one cannot look."""
    pid = owner.get("pid")
    if owner.get("host") not in (None, socket.gethostname()):
        return None
    # A pid of 0 or below would address process groups; a recorded pid is never that.
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, it just belongs to someone else
    except (OverflowError, OSError):
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        if stat[0] == "Z":  # exited, not yet reaped by its parent
            return False
        started = owner.get("pid_start")
        if started is not None and stat[19] != str(started):
            return False  # the pid now belongs to a newer process
    return True


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _process_start(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return int(stat[19]) if stat is not None else None


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
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=source, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def command_line() -> list[str]:
    """The command as typed, for meta.json (`python -m latentrun` when started that way)."""
    program = Path(sys.argv[0]).name
    head = ["python", "-m", "latentrun"] if program == "__main__.py" else [program]
    return [*head, *sys.argv[1:]]
