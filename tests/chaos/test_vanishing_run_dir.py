"""A run directory deleted while its run trains ends the run with exit 1 (a runtime failure),
whichever write notices first (issue 22 item 20: it was 2, the usage status, or 1, by timing)."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from support import ROOT, SMOKE

from latentrun.runs import run_files as runs

pytestmark = pytest.mark.slow  # a training process whose run dir is deleted under it


def test_a_run_dir_deleted_mid_run_exits_1(tmp_path, rng):
    runs_dir = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), str(SMOKE), "--runs-dir", str(runs_dir)]
        + ["--set", "train.num_threads=1", "--set", "train.max_steps=100000", "--set", "train.save_every=5"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not runs.run_dirs(runs_dir) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    delay = rng.uniform(0.0, 2.0)  # while it starts, builds, or trains
    print(f"deleting the run dir {delay:.2f} s after it appeared")
    time.sleep(delay)
    [run_dir] = runs.run_dirs(runs_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        status = process.wait(timeout=120)
    finally:
        process.kill()
    err = process.stderr.read()
    assert status == 1, f"exit {status}: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
