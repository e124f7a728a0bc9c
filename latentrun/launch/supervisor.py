"""The local launcher's supervisor: starts each point's child process, watches it, and forwards
SIGINT/SIGTERM to every child; each child checkpoints and stops, and no further run starts.

It also keeps the launch's own bookkeeping true while it runs: as soon as a child's run directory
appears, its id is noted in the launch folder (so that a damaged meta.json later is recognised, not
trained again), and a point that a killed launcher's child still trains is waited for in a slot of
its own (adopted), never started a second time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from latentrun.core.status import EXIT_USAGE
from latentrun.launch import record
from latentrun.launch.jobs import STOPPING_SIGNALS, Job, Outcome, child_command, child_env, classify
from latentrun.report import listing
from latentrun.runs import lock
from latentrun.runs import run_files as runs

_POLL_SECONDS = 0.5


class Supervisor:
    """Runs jobs on the calling thread, several threads at a time; one instance per launch."""

    def __init__(self, runs_dir: Path, launch_id: str = "", total: int = 0) -> None:
        self.runs_dir = runs_dir
        self.launch_id = launch_id
        self.total = total
        self.started = 0
        self.cancelled = threading.Event()
        self.children: dict[int, subprocess.Popen] = {}
        self.adopted: dict[int, int] = {}  # index -> pid of an earlier launcher's child
        self.noted: dict[int, Path] = {}
        self.claimed: set[Path] = set()
        self.claim_lock = threading.Lock()
        self.existing = set(runs.run_dirs(runs_dir))  # runs from before this launch are never claimed

    def run(self, job: Job, logs: Path) -> Outcome:
        """Train one run in a child process (or wait for the one already training it) and report how it ended."""
        if self.cancelled.is_set():
            return Outcome(job, "skipped", message="not started: the launch was interrupted")
        if job.adopt:
            return self._adopt(job)
        log_path = logs / f"{job.index}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                child_command(job.args),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._child_env(job),
            )
            self.children[job.index] = process
            self._say_started(job, f"pid {process.pid}")
            if self.cancelled.is_set():  # the signal came between the check above and the start
                process.send_signal(signal.SIGINT)
            returncode = self._wait(job, process)
            self.children.pop(job.index, None)
        output = log_path.read_text(errors="replace")
        lost_race = returncode == EXIT_USAGE and "a point is not trained twice" in output
        if lost_race and job.run_dir is None and job.index not in self.noted:
            return self._adopt(job)  # a killed launcher's child claimed the point first: wait for it
        return self._outcome(job, process.pid, returncode, output)

    def _child_env(self, job: Job) -> dict[str, str]:
        claim = record.job_folder(self.runs_dir, self.launch_id, job.index) if self.launch_id else None
        return {**os.environ, **child_env(self.launch_id, job.index, claim)}

    def _say_started(self, job: Job, what: str) -> None:
        with self.claim_lock:
            self.started += 1
            count = self.started
        print(f"[{count}/{self.total or '?'}] started {job.label} ({what})", file=sys.stderr, flush=True)

    def _wait(self, job: Job, process: subprocess.Popen) -> int:
        """The child's exit status; meanwhile its run directory is noted as soon as it appears."""
        while True:
            try:
                returncode = process.wait(timeout=_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                self._note(job, process.pid)
                continue
            self._note(job, process.pid)
            return returncode

    def _note(self, job: Job, pid: int) -> None:
        if job.run_dir is not None or job.index in self.noted or not self.launch_id:
            return
        run_dir = self._claim_run_dir(pid)
        if run_dir is not None:
            self.noted[job.index] = run_dir
            record.note_run(self.runs_dir, self.launch_id, job.index, run_dir.name)

    def _adopt(self, job: Job) -> Outcome:
        """Wait, in this job's slot, for the live process that already trains its point; then read how it ended."""
        folder = job.run_dir or record.job_folder(self.runs_dir, self.launch_id, job.index)
        holder = lock.holder(folder)
        if holder and runs.owner_alive(holder):  # on this host: it can be sent the launch's signals
            self.adopted[job.index] = holder["pid"]
        self._say_started(
            job, f"already trained by {lock.describe(holder)}, left by an earlier launcher: waiting for it"
        )
        while lock.holder(folder) is not None:
            time.sleep(_POLL_SECONDS)
        self.adopted.pop(job.index, None)
        run_dir = job.run_dir or record.launch_runs(self.runs_dir, self.launch_id).get(job.index)
        if run_dir is None:
            return Outcome(job, "failed", message="the earlier launcher's child ended without a run directory")
        record.note_run(self.runs_dir, self.launch_id, job.index, run_dir.name)
        return Outcome(job, listing.summarize(run_dir)["status"], listing.summarize(run_dir))

    def _outcome(self, job: Job, pid: int, returncode: int, output: str) -> Outcome:
        run_dir = job.run_dir or self.noted.get(job.index) or self._claim_run_dir(pid)
        run = listing.summarize(run_dir) if run_dir else {}
        return classify(job, returncode, run, output, cancelled=self.cancelled.is_set())

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
                if meta.get("pid") == pid:
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
            for pid in list(self.adopted.values()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signum)
            if first:  # os.write: print() may not be re-entered from a handler that interrupted a print
                os.write(
                    2,
                    f"\n{signal.Signals(signum).name}: the running runs stop at a clean checkpoint; "
                    "no more will start\n".encode(),
                )

        return {signum: signal.signal(signum, forward) for signum in STOPPING_SIGNALS}

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
