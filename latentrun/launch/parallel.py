"""Parallel launches: several experiments and/or seeds, N runs at a time, each in its own process.

joblib schedules the runs on N threads, and each thread supervises one child process running the
ordinary single-run command (`python -m latentrun EXP.yaml --set seed=S ...`). The runs are
separate processes rather than joblib's own loky workers on purpose: a worker that dies (segfault,
out-of-memory killer) makes loky abort every other job with TerminatedWorkerError, while a child
that dies ends only its own run. It also means each run's meta.json records a command that
reproduces that run on its own. Every configuration is validated before anything starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from latentrun import config as config_module
from latentrun.config import ConfigError, sweep
from latentrun.config.build import resolve_device
from latentrun.core.status import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from latentrun.launch import record
from latentrun.report import listing
from latentrun.runs import rundir as runs

_FAILED = ("crashed", "failed")
_TAIL_LINES = 10  # of a failed run's console output, shown at the end: where its traceback is


@dataclass(frozen=True)
class Job:
    """One run to launch: its place in the launch, a label, and the command-line arguments that start
    it (`EXP.yaml --set ...` for a new run, `--resume RUN_DIR ...` for one that goes on)."""

    index: int
    label: str
    args: tuple[str, ...]
    run_dir: Path | None = None  # known when the job resumes a run
    overrides: tuple[str, ...] = ()
    experiment: str = ""


@dataclass
class Outcome:
    """How a launched run ended, read back from its exit status and run directory."""

    job: Job
    status: str
    run: dict[str, Any] = field(default_factory=dict)  # listing.summarize() of its run dir, if it made one
    message: str = ""
    output_tail: str = ""


def cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(
    experiments: Sequence[str],
    seeds: Sequence[int] | None,
    overrides: Sequence[str],
    runs_dir: Path,
    jobs: int,
    stop_at: int | None,
    split_threads: bool = True,
) -> list[Job]:
    """One Job per (experiment, point of the sweep, seed), every config validated first: ConfigError
    lists every problem of every file and point at once, so a typo in the fifth file does not surface
    after four runs are done."""
    problems: list[str] = []
    axes = sweep.parse(overrides)  # a repeated key, a bad list or range: refused before anything else
    if seeds and any(axis.key == "seed" for axis in axes):
        problems.append("--seeds and --set seed=...: give the seeds one way")
    paths = [str(Path(text).resolve()) for text in experiments]
    problems += [
        f"{text}: given twice; use --seeds for repeated runs"
        for i, text in enumerate(experiments)
        if paths[i] in paths[:i]
    ]
    if problems:
        raise ConfigError(problems)
    swept = [axis.key for axis in axes if axis.swept]
    seed_choices: list[int | None] = list(seeds) if seeds else [None]
    combos = [
        (experiment, point, seed) for experiment in experiments for point in sweep.points(axes) for seed in seed_choices
    ]
    threads = max(1, cores() // min(jobs, len(combos)))
    planned = []
    for index, (experiment, point, seed) in enumerate(combos):
        run_overrides = [*point, *([f"seed={seed}"] if seed is not None else [])]
        try:
            resolved = config_module.load(experiment, run_overrides)
            resolve_device(resolved["train"]["device"])
        except ConfigError as error:
            problems += [p for p in error.problems if p not in problems]
            continue
        if split_threads and resolved["train"]["num_threads"] == 0:  # split the cores; an explicit count is kept
            run_overrides = [text for text in run_overrides if not text.startswith("train.num_threads=")]
            run_overrides.append(f"train.num_threads={threads}")
        args = [experiment, *(arg for text in run_overrides for arg in ("--set", text)), "--runs-dir", str(runs_dir)]
        if stop_at is not None:
            args += ["--stop-at", str(stop_at)]
        values = dict(text.split("=", 1) for text in point)
        label = " ".join(
            [resolved["experiment"], *(f"{key}={values[key]}" for key in swept)]
            + ([f"seed={seed}"] if seed is not None else [])
        )
        planned.append(Job(index, label, tuple(args), overrides=tuple(run_overrides), experiment=experiment))
    if problems:
        raise ConfigError(problems)
    return planned


def launch(
    experiments: Sequence[str],
    seeds: Sequence[int] | None,
    overrides: Sequence[str],
    runs_dir: Path,
    jobs: int,
    stop_at: int | None,
    launcher: str = "local",
    launcher_options: dict[str, Any] | None = None,
) -> int:
    """Train every (experiment, sweep point, seed) run, `jobs` at a time (locally) or one SLURM job
    each; record the launch in runs_dir/launches/ID/sweep.yaml and tag every run with its id. A line
    says when each run starts and one when it ends. Returns 1 if any run failed, else 130 if any was
    interrupted (or never started because of the interrupt), else 0."""
    # On a cluster each run has a node of its own: its threads are not this machine's cores to split.
    planned = plan(experiments, seeds, overrides, runs_dir, jobs, stop_at, split_threads=launcher == "local")
    if launcher == "slurm":  # before anything is written
        from latentrun.launch import slurm

        slurm.check_available()
    launch_id = record.new_launch_id()
    axes = sweep.parse(overrides)
    document: dict[str, Any] = {
        "launch": launch_id,
        "created": runs.now(),
        "command": runs.command_line(),
        "runs_dir": str(runs_dir.resolve()),
        "launcher": launcher,
        "experiments": [str(Path(text).resolve()) for text in experiments],
        "seeds": list(seeds) if seeds else None,
        "overrides": list(overrides),
        "sweep": {axis.key: list(axis.values) for axis in axes if axis.swept},
        "stop_at": stop_at,
        "jobs": [
            {"index": job.index, "label": job.label, "experiment": job.experiment, "overrides": list(job.overrides)}
            for job in planned
        ],
    }
    path = record.write_record(runs_dir, launch_id, document)
    print(f"launch {launch_id}: {len(planned)} runs, recorded in {path}", file=sys.stderr)
    outcomes = _run_all(planned, runs_dir, launch_id, jobs, launcher, launcher_options)
    for entry, outcome in zip(document["jobs"], outcomes):
        entry.update(run=outcome.run.get("id"), status=outcome.status)
    record.write_record(runs_dir, launch_id, document)
    return _finish(outcomes, runs_dir, launch_id)


def resume_launch(
    launch_id: str,
    runs_dir: Path,
    overrides: Sequence[str],
    force: bool,
    stop_at: int | None,
    jobs: int,
    launcher: str = "local",
    launcher_options: dict[str, Any] | None = None,
) -> int:
    """Continue every unfinished run of a launch, and start the ones it never got to, `jobs` at a time."""
    document = record.read_record(runs_dir, launch_id)
    existing = record.launch_runs(runs_dir, launch_id)
    todo: list[Job] = []
    extra = [arg for text in overrides for arg in ("--set", text)]
    tail = [*(["--stop-at", str(stop_at)] if stop_at is not None else []), *(["--force"] if force else [])]
    for entry in document["jobs"]:
        index, label = entry["index"], entry.get("label", str(entry["index"]))
        run_dir = existing.get(index)
        if run_dir is None:
            args = [entry["experiment"], *(a for t in entry["overrides"] for a in ("--set", t)), *extra]
            args += ["--runs-dir", str(runs_dir), *(["--stop-at", str(stop_at)] if stop_at is not None else [])]
            todo.append(
                Job(index, label, tuple(args), overrides=tuple(entry["overrides"]), experiment=entry["experiment"])
            )
        elif listing.summarize(run_dir)["status"] == "running":
            print(f"{label}: {run_dir.name} is still running; left alone", file=sys.stderr)
        elif listing.summarize(run_dir)["status"] != "finished":
            todo.append(Job(index, label, ("--resume", str(run_dir), *extra, *tail), run_dir=run_dir))
    if not todo:
        print(f"launch {launch_id}: all {len(document['jobs'])} runs finished; nothing to resume", file=sys.stderr)
        return EXIT_OK
    if overrides:  # checked once here rather than failing in every child
        sweep.parse(overrides)
    print(f"launch {launch_id}: {len(todo)} of {len(document['jobs'])} runs to go on", file=sys.stderr)
    outcomes = _run_all(todo, runs_dir, launch_id, jobs, launcher, launcher_options)
    by_index = {outcome.job.index: outcome for outcome in outcomes}
    for entry in document["jobs"]:
        if entry["index"] in by_index:
            outcome = by_index[entry["index"]]
            entry.update(run=outcome.run.get("id"), status=outcome.status)
    record.write_record(runs_dir, launch_id, document)
    return _finish(outcomes, runs_dir, launch_id)


def _run_all(
    planned: list[Job],
    runs_dir: Path,
    launch_id: str,
    jobs: int,
    launcher: str,
    launcher_options: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Every job's Outcome in plan order, each printed once on stdout as it ends."""
    if launcher == "slurm":
        from latentrun.launch import slurm

        return slurm.run_jobs(planned, runs_dir, launch_id, report=_report_end, parameters=launcher_options)
    n_jobs = min(jobs, len(planned))
    print(
        f"launching {len(planned)} runs, {n_jobs} at a time, each with {max(1, cores() // n_jobs)} of {cores()} cores; "
        f"follow them with: python run.py list --launch {launch_id} --runs-dir {runs_dir}",
        file=sys.stderr,
    )
    supervisor = _Supervisor(runs_dir, launch_id, len(planned))
    outcomes: dict[int, Outcome] = {}
    previous = supervisor.install_signal_handlers()
    try:
        with tempfile.TemporaryDirectory(prefix="latentrun-launch-") as logs:
            results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator_unordered")(
                delayed(supervisor.run)(job, Path(logs)) for job in planned
            )
            for outcome in results:
                outcomes[outcome.job.index] = outcome
                _report_end(outcome)
    finally:
        supervisor.restore_signal_handlers(previous)
    return [outcomes[job.index] for job in planned]


def _report_end(outcome: Outcome) -> None:
    print(format_outcome(outcome), flush=True)


def _finish(ordered: list[Outcome], runs_dir: Path, launch_id: str) -> int:
    for outcome in ordered:
        if outcome.status in _FAILED and outcome.output_tail:
            print(f"--- {outcome.job.label}: last lines of its output ---\n{outcome.output_tail}", file=sys.stderr)
    counts: dict[str, int] = {}
    for outcome in ordered:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print(f"{len(ordered)} runs: " + ", ".join(f"{count} {status}" for status, count in counts.items()))
    where = "" if runs_dir == Path("runs") else f" --runs-dir {runs_dir}"
    next_steps = f"python run.py list --launch {launch_id}{where}, python run.py compare --launch {launch_id}{where}"
    if any(outcome.status not in ("finished",) for outcome in ordered):
        next_steps += f", python run.py --resume --launch {launch_id}{where}"
    print(f"next: {next_steps}", file=sys.stderr)
    if any(outcome.status in _FAILED for outcome in ordered):
        return EXIT_FAILURE
    if any(outcome.status in ("interrupted", "skipped") for outcome in ordered):
        return EXIT_INTERRUPTED
    return EXIT_OK


def format_outcome(outcome: Outcome) -> str:
    """One summary line: status, which run, and how far and how well it got (or why it failed)."""
    run = outcome.run
    head = f"{outcome.status:<11}  {outcome.job.label:<24}  {run.get('id', '-')}"
    if outcome.status in _FAILED + ("skipped",):
        return f"{head}  {outcome.message}".rstrip()
    best = run.get("best_exact_match")
    elapsed = run.get("elapsed_seconds")
    return (
        f"{head}  step {run.get('step')}/{run.get('max_steps')}  best val/exact_match "
        + (f"{best:.4f}" if best is not None else "-")
        + (f"  {elapsed:.1f} s" if elapsed is not None else "")
    )


class _Supervisor:
    """Starts and watches the child processes; on SIGINT or SIGTERM it passes the signal on to every
    running child (each checkpoints and stops cleanly) and starts no further runs."""

    def __init__(self, runs_dir: Path, launch_id: str = "", total: int = 0) -> None:
        self.runs_dir = runs_dir
        self.launch_id = launch_id
        self.total = total
        self.started = 0
        self.cancelled = threading.Event()
        self.children: dict[int, subprocess.Popen] = {}
        self.claimed: set[Path] = set()
        self.claim_lock = threading.Lock()
        self.existing = set(runs.run_dirs(runs_dir))  # runs from before this launch are never claimed

    def run(self, job: Job, logs: Path) -> Outcome:
        """Train one run in a child process and report how it ended."""
        if self.cancelled.is_set():
            return Outcome(job, "skipped", message="not started: the launch was interrupted")
        package_root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
            **(record.environment(self.launch_id, job.index) if self.launch_id else {}),
        }
        log_path = logs / f"{job.index}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "latentrun", *job.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            self.children[job.index] = process
            with self.claim_lock:
                self.started += 1
                count = self.started
            print(f"[{count}/{self.total or '?'}] started {job.label} (pid {process.pid})", file=sys.stderr, flush=True)
            if self.cancelled.is_set():  # the signal came between the check above and the start
                process.send_signal(signal.SIGINT)
            returncode = process.wait()
            self.children.pop(job.index, None)
        return self._outcome(job, process.pid, returncode, log_path.read_text(errors="replace"))

    def _outcome(self, job: Job, pid: int, returncode: int, output: str) -> Outcome:
        run_dir = job.run_dir or self._claim_run_dir(pid)
        run = listing.summarize(run_dir) if run_dir else {}
        lines = [line for line in output.splitlines() if line.strip()]
        tail = "\n".join(lines[-_TAIL_LINES:])
        if returncode < 0:
            message = f"killed by {signal.Signals(-returncode).name}"
        elif returncode != 0:
            message = f"exit {returncode}: {lines[-1].strip() if lines else 'no output'}"
        else:
            message = ""
        if run_dir is None:
            status = "interrupted" if returncode == EXIT_INTERRUPTED else "failed" if returncode else "finished"
            return Outcome(job, status, run, message or "no run directory was made", tail)
        status = run["status"]
        if returncode not in (EXIT_OK, EXIT_INTERRUPTED) and status not in _FAILED:
            status = "crashed"  # a nonzero exit is a failure whatever meta.json had time to say
        return Outcome(job, status, run, message, tail)

    def _claim_run_dir(self, pid: int) -> Path | None:
        """The run directory this launch's child `pid` created: a new one whose meta.json records it."""
        with self.claim_lock:
            for run_dir in runs.run_dirs(self.runs_dir):
                if run_dir in self.existing or run_dir in self.claimed:
                    continue
                try:
                    meta = runs.read_meta(run_dir)
                except runs.RunError:
                    continue
                if isinstance(meta, dict) and meta.get("pid") == pid:
                    self.claimed.add(run_dir)
                    return run_dir
        return None

    def install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def forward(signum: int, frame: Any) -> None:
            first = not self.cancelled.is_set()
            self.cancelled.set()
            for process in list(self.children.values()):
                if process.poll() is None:
                    process.send_signal(signum)
            if first:  # os.write: print() may not be re-entered from a handler that interrupted a print
                os.write(
                    2,
                    f"\n{signal.Signals(signum).name}: the running runs stop at a clean checkpoint; "
                    "no more will start\n".encode(),
                )

        return {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
