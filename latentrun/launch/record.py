"""Launches: the id shared by every run of one launch (several files, --seeds, a sweep) and the
`sweep.yaml` record of what it was asked to train, after Hydra's `multirun.yaml`.

The record lives in `RUNS_DIR/launches/<id>/sweep.yaml`, beside the runs (which `run_dirs` finds
by their config.yaml, so the folder is never taken for a run). Each run's meta.json names its
launch and its place in it, so a launch's runs are found even when its launcher was killed before
it could write down their ids.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from latentrun.core.atomic import atomic_write
from latentrun.core.text import printable
from latentrun.runs import lock, records
from latentrun.runs import run_files as runs

LAUNCHES_DIR = "launches"
RECORD_FILE = "sweep.yaml"
# The launcher tells each run it starts which launch it belongs to, and where in it.
ENV_LAUNCH, ENV_INDEX, ENV_CLAIM = "LATENTRUN_LAUNCH", "LATENTRUN_LAUNCH_INDEX", "LATENTRUN_LAUNCH_CLAIM"
JOBS_DIR, RUN_FILE = "jobs", "run"


def new_launch_id() -> str:
    """A fresh launch id: sorts by time, unique enough for one user's runs dir."""
    return f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def record_path(runs_dir: Path, launch_id: str) -> Path:
    """Where the record of `launch_id` lives (after checking the id cannot leave the runs dir)."""
    if not runs.is_plain_id(launch_id):
        raise runs.RunError(f"{launch_id!r}: not a launch id (one folder name, no path separators)")
    return runs_dir / LAUNCHES_DIR / launch_id / RECORD_FILE


RECORD_FORMAT = 2  # records of format 1 (no `format` key) predate recorded_jobs


def write_record(runs_dir: Path, launch_id: str, record: dict[str, Any]) -> Path:
    """Write (or rewrite) the launch's sweep.yaml atomically; `recorded_jobs` goes last, so that a
    copy cut short anywhere is recognised (read_record)."""
    path = record_path(runs_dir, launch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # `format` opens the file and `recorded_jobs` closes it: a copy that has the first and not the
    # last was cut, wherever the cut fell (inside the last job's text included).
    document = {"format": RECORD_FORMAT}
    document.update((key, value) for key, value in record.items() if key not in ("format", "recorded_jobs"))
    document["recorded_jobs"] = len(record["jobs"])
    atomic_write(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def read_record(runs_dir: Path, launch_id: str) -> dict[str, Any]:
    """The launch's sweep.yaml, checked against schemas/sweep.schema.json and against itself (one job
    per point, numbered in order); RunError in one line naming the file and the problem."""
    path = record_path(runs_dir, launch_id)
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = sorted(p.name for p in (runs_dir / LAUNCHES_DIR).glob("*") if (p / RECORD_FILE).is_file())
        hint = f"; launches there: {', '.join(known[-5:])}" if known else ""
        raise runs.RunError(f"launch {launch_id}: no {path}{hint}") from None
    except (OSError, ValueError, yaml.YAMLError) as error:  # ValueError: bytes that are not UTF-8
        reason = printable(str(error).splitlines()[0] if str(error).strip() else type(error).__name__)
        raise runs.RunError(f"{path}: damaged launch record, not YAML ({reason})") from None
    if not isinstance(record, dict):
        raise runs.RunError(f"{path}: damaged launch record (a mapping of launch, experiments, jobs was expected)")
    records.check(record, records.SWEEP_SCHEMA, path)
    indexes = [job["index"] for job in record["jobs"]]
    if indexes != list(range(len(indexes))):
        raise runs.RunError(
            f"{path}: damaged launch record: jobs are numbered {_short(indexes)}, not 0 to {len(indexes) - 1}"
        )
    if record.get("format", 1) >= RECORD_FORMAT and "recorded_jobs" not in record:
        raise runs.RunError(f"{path}: damaged launch record: it ends before recorded_jobs (cut short?)")
    expected = record.get("recorded_jobs", _points(record))
    if len(indexes) != expected:
        raise runs.RunError(
            f"{path}: damaged launch record: {len(indexes)} jobs where {expected} were recorded (cut short?)"
        )
    return record


def _points(record: dict[str, Any]) -> int:
    """How many jobs the launch's experiments, sweep and seeds make, for a record without recorded_jobs."""
    count = len(record["experiments"]) * len(record.get("seeds") or [None])
    for values in (record.get("sweep") or {}).values():
        count *= len(values)
    return count


def _short(values: list[int]) -> str:
    return ", ".join(map(str, values[:5])) + (", ..." if len(values) > 5 else "")


def launch_runs(runs_dir: Path, launch_id: str) -> dict[int, Path]:
    """The runs that meta.json says belong to `launch_id`, by their index in the launch."""
    found = {}
    for run_dir in runs.run_dirs(runs_dir):
        try:
            meta = runs.read_meta(run_dir)
        except runs.RunError:
            continue
        if meta.get("launch") == launch_id and isinstance(meta.get("launch_index"), int):
            found[meta["launch_index"]] = run_dir
    return found


def hold_launch(runs_dir: Path, launch_id: str) -> contextlib.AbstractContextManager[lock.RunLock]:
    """Hold the launch for this launcher, released when it exits however it exits (a flock): a second
    launcher of the same launch (`--resume --launch` while the first still runs) is refused with the
    live one's pid and host, as a second trainer of a run is."""
    folder = record_path(runs_dir, launch_id).parent
    folder.mkdir(parents=True, exist_ok=True)
    return lock.hold(folder)


def job_folder(runs_dir: Path, launch_id: str, index: int) -> Path:
    """Where the launch keeps what it knows of one point outside any run dir: who trains it (a claim
    lock, held by the child for its whole life) and which run it became."""
    return record_path(runs_dir, launch_id).parent / JOBS_DIR / str(index)


def job_holder(runs_dir: Path, launch_id: str, index: int) -> dict[str, Any] | None:
    """The claim record of the live process training point `index` (even one whose launcher was
    killed), or None when none is."""
    return lock.holder(job_folder(runs_dir, launch_id, index))


def note_run(runs_dir: Path, launch_id: str, index: int, run_id: str) -> None:
    """Remember which run point `index` became, as soon as the launcher sees it: the one place that
    still knows it if the run's meta.json is damaged later."""
    folder = job_folder(runs_dir, launch_id, index)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / RUN_FILE, run_id + "\n")


def noted_run(runs_dir: Path, launch_id: str, index: int) -> str | None:
    """The run id `note_run` kept for point `index`, if any."""
    try:
        text = (job_folder(runs_dir, launch_id, index) / RUN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    return text if runs.is_plain_id(text) else None


def from_environment() -> dict[str, Any] | None:
    """The launch a run was started by (its id and index), as its launcher set the environment.

    A local launcher also names the point's claim folder: the run claims its point for as long as
    it lives, so that the same point never trains twice at once, even when a killed launcher's child
    and a resumed launcher's child start together (the second is refused with the first's pid)."""
    launch_id = os.environ.get(ENV_LAUNCH)
    if not launch_id:
        return None
    index = os.environ.get(ENV_INDEX, "")
    claim = os.environ.get(ENV_CLAIM)
    if claim and os.environ.get("RANK", "0") == "0":
        _claim(Path(claim), launch_id, index)
    return {"launch": launch_id, "launch_index": int(index) if index.isdigit() else None}


def _claim(folder: Path, launch_id: str, index: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        held = lock.acquire(folder)
    except lock.RunLockedError:
        holder = lock.describe(lock.holder(folder))
        raise runs.RunError(
            f"launch {launch_id}, point {index}: already being trained by {holder}; a point is not trained twice"
        ) from None
    atexit.register(held.release)
    # The claim is taken by the child, after its imports: under load a killed launcher's child can
    # arrive after a resumed launcher's child has trained the same point and let go of it. Whoever
    # holds the claim therefore looks first for a run the point already became.
    runs_dir = folder.parents[3]  # RUNS/launches/ID/jobs/INDEX
    existing = launch_runs(runs_dir, launch_id).get(int(index)) if index.isdigit() else None
    noted = noted_run(runs_dir, launch_id, int(index)) if index.isdigit() else None
    if existing is not None or noted is not None:
        held.release()
        trained = existing.name if existing is not None else noted
        raise runs.RunError(
            f"launch {launch_id}, point {index}: already trained as {trained}; a point is not trained twice"
        )


def environment(launch_id: str, index: int, claim: Path | None = None) -> dict[str, str]:
    """The variables that tag a child run with its launch (and, locally, the folder it claims)."""
    return {ENV_LAUNCH: launch_id, ENV_INDEX: str(index), **({ENV_CLAIM: str(claim)} if claim else {})}
