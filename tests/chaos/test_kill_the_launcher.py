"""A launch trains every point exactly once, whatever happens to its launcher (issue 22 items 1-6):
SIGKILL at a seeded random moment, a second launcher while the first lives, SIGTERM while the
children start, a damaged point; `--resume --launch` finishes the rest and never duplicates one."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import run_cli
from support import ROOT, SMOKE

from latentrun.launch import record
from latentrun.runs import lock
from latentrun.runs import run_files as runs

pytestmark = pytest.mark.slow  # launchers and their runs as processes, killed and resumed

POINTS = 4
LAUNCH = [SMOKE, "--seeds", "1,2,3,4", "--jobs", "2", "--set", "train.num_threads=1", "--set", "train.max_steps=20"]


def start_launcher(runs_dir: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *map(str, LAUNCH), "--runs-dir", str(runs_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal for the launcher alone, as `kill PID` sends it
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((runs_dir / record.LAUNCHES_DIR).glob(f"*/{record.RECORD_FILE}"))
        if found:
            return process, found[0].parent.name
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the launcher wrote no sweep.yaml")


def capture(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_cli(*args)
    return status, out.getvalue(), err.getvalue()


def resume_counting_trainers(runs_dir: Path, launch_id: str, *extra: str) -> tuple[int, int, str]:
    """(exit status, most runs seen training at once, stderr) of `--resume --launch` in a child process."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--resume", "--launch", launch_id, "--jobs", "2"]
        + ["--runs-dir", str(runs_dir), *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    most = 0
    while process.poll() is None:
        most = max(most, sum(lock.holder(run_dir) is not None for run_dir in runs.run_dirs(runs_dir)))
        time.sleep(0.05)
    return process.wait(timeout=120), most, process.stderr.read()


def assert_each_point_once(runs_dir: Path, launch_id: str, max_steps: int = 20) -> None:
    run_dirs = runs.run_dirs(runs_dir)
    indexes = sorted(runs.read_meta(run_dir)["launch_index"] for run_dir in run_dirs)
    assert indexes == list(range(POINTS)), f"{len(run_dirs)} run dirs for {POINTS} points: indexes {indexes}"
    for run_dir in run_dirs:
        meta = runs.read_meta(run_dir)
        assert meta["status"] == "finished" and meta["step"] == max_steps, (run_dir.name, meta["status"], meta["step"])
    document = record.read_record(runs_dir, launch_id)
    by_id = {run_dir.name: runs.read_meta(run_dir)["launch_index"] for run_dir in run_dirs}
    for job in document["jobs"]:
        assert job.get("status") == "finished" and by_id.get(job.get("run")) == job["index"], job


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Items 1, 2 and 4: a second launcher is refused while the first lives; the first is SIGKILLed
    at a random moment (children starting or training); one resume then finishes every point once."""
    seed = int(os.environ.get("LATENTRUN_CHAOS_SEED") or int.from_bytes(os.urandom(3), "big"))
    kill_after = 0.2 + (seed % 1000) / 1000 * 6.0
    print(f"\nchaos seed {seed} (replay: LATENTRUN_CHAOS_SEED={seed}): SIGKILL {kill_after:.2f} s after sweep.yaml")
    runs_dir = tmp_path_factory.mktemp("killed") / "runs"
    launcher, launch_id = start_launcher(runs_dir)
    refused = capture("--resume", "--launch", launch_id, "--runs-dir", runs_dir)
    time.sleep(kill_after)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=30)
    status, most, err = resume_counting_trainers(runs_dir, launch_id)
    return {
        "runs_dir": runs_dir,
        "launch": launch_id,
        "refused": refused,
        "status": status,
        "most": most,
        "err": err,
        "launcher_pid": launcher.pid,
        "kill_after": kill_after,
    }


def test_a_second_launcher_is_refused_with_the_live_ones_pid(killed_and_resumed):
    status, _, err = killed_and_resumed["refused"]
    assert status == 2 and "Traceback" not in err, err
    assert f"in use by pid {killed_and_resumed['launcher_pid']} on host" in err, err


def test_after_a_sigkill_one_resume_trains_each_point_exactly_once(killed_and_resumed):
    assert killed_and_resumed["status"] == 0, killed_and_resumed["err"]
    assert_each_point_once(killed_and_resumed["runs_dir"], killed_and_resumed["launch"])


def test_the_resume_counts_a_killed_launchers_children_against_jobs(killed_and_resumed):
    assert killed_and_resumed["most"] <= 2, killed_and_resumed["most"]


def test_a_point_with_damaged_meta_is_named_never_trained_again(killed_and_resumed, tmp_path, rng):
    """Item 3: truncated, garbage or wrong-type meta.json of one point."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(killed_and_resumed["runs_dir"], runs_dir)
    victim = rng.choice(runs.run_dirs(runs_dir))
    meta_path = victim / runs.META_FILE
    damage = rng.choice(["truncated", "garbage", "wrong type"])
    print(f"damage: {damage} meta.json of {victim.name}")
    text = meta_path.read_text()
    meta_path.write_text(
        {"truncated": text[: len(text) // 2], "garbage": "\x00\x13garbage", "wrong type": "[]"}[damage]
    )
    status, out, err = capture("--resume", "--launch", killed_and_resumed["launch"], "--runs-dir", runs_dir)
    assert status == 1 and "Traceback" not in err, err
    [line] = [line for line in out.splitlines() if line.startswith("damaged")]
    assert victim.name in line and "meta.json" in line, line
    assert len(runs.run_dirs(runs_dir)) == POINTS, "the damaged point was trained again"
    jobs = yaml.safe_load((runs_dir / record.LAUNCHES_DIR / killed_and_resumed["launch"] / "sweep.yaml").read_text())
    assert [job["status"] for job in jobs["jobs"]].count("damaged") == 1


def test_sigterm_while_children_start_exits_130_and_a_resume_with_new_max_steps_finishes(tmp_path, rng):
    """Items 5 and 6: SIGTERM of the launcher while its children start gave exit 1; a resume's
    --set train.max_steps failed every point never started with 'already set by --set'."""
    runs_dir = tmp_path / "runs"
    launcher, launch_id = start_launcher(runs_dir)
    delay = rng.uniform(0.0, 1.0)
    print(f"SIGTERM {delay:.2f} s after sweep.yaml")
    time.sleep(delay)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == 130
    status, most, err = resume_counting_trainers(runs_dir, launch_id, "--set", "train.max_steps=30")
    assert status == 0, err
    assert_each_point_once(runs_dir, launch_id, max_steps=30)
    assert most <= 2
    configs = {json.dumps(runs.read_meta(d)["max_steps"]) for d in runs.run_dirs(runs_dir)}
    assert configs == {"30"}
