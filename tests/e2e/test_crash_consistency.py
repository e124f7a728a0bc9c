"""SIGKILL at random moments, each followed by --resume: no checkpoint is ever unreadable, a second
process is refused while one holds the run, the dead holder's lock is taken over, and the run ends
bitwise equal to one that was never interrupted."""

import json
import random
import re
import time

import pytest
from helpers import assert_states_equal, final_state, only_run, run_cli, run_process, scalars
from support import SMOKE

from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs import lock

pytestmark = pytest.mark.slow

KILLS = 5
MAX_STEPS = 240  # far more than 5 kills can use up, so the run is still going at every kill
# A checkpoint every step, so that many kills land inside a checkpoint write.
SETTINGS = (
    "--set",
    "train.num_threads=1",
    "--set",
    f"train.max_steps={MAX_STEPS}",
    "--set",
    "train.save_every=1",
    "--set",
    "train.eval_every=80",
)
STEP_LINE = re.compile(rf"step (\d+)/{MAX_STEPS} loss")


def wait_until(condition, process, what, timeout=120.0, poll=0.005):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(
                f"process ended ({process.returncode}) while waiting for {what}: {process.stderr.read()[-3000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def assert_every_checkpoint_readable(run_dir):
    found = checkpoint.step_checkpoints(run_dir / "checkpoints")
    for _, path in found:
        checkpoint.load(path)  # raises CheckpointError if truncated, altered or unrecorded
    return len(found)


def test_random_sigkills_then_resume_end_bitwise_equal_to_an_uninterrupted_run(tmp_path, capsys):
    straight_dir = tmp_path / "straight"
    # One checkpoint at the end is enough here; save_every only steers when state is written, not what is computed.
    # (A key may be set once: the straight run's settings with save_every replaced, not repeated.)
    straight = [f"train.save_every={MAX_STEPS}" if arg == "train.save_every=1" else arg for arg in SETTINGS]
    assert run_cli(SMOKE, "--runs-dir", straight_dir, *straight) == 0
    straight_run = only_run(straight_dir)

    rng = random.Random(20261127)
    runs_dir = tmp_path / "killed"
    process = run_process(SMOKE, "--runs-dir", runs_dir, *SETTINGS)
    wait_until(lambda: runs_dir.is_dir() and any(runs_dir.glob("*/train.log")), process, "the run dir")
    run_dir = only_run(runs_dir)
    log = run_dir / "train.log"
    kills, mid_write, checked, refused = 0, 0, 0, False
    while kills < KILLS:
        log_start = log.stat().st_size if log.exists() else 0

        def steps_since_launch():
            return len(STEP_LINE.findall(log.read_text()[log_start:])) if log.exists() else 0

        if kills == 2:  # once, at a random moment of start-up: imports, lock, checkpoint verification
            time.sleep(rng.uniform(0.5, 3.0))
        elif kills >= 3:  # the torn-write case, on purpose: this process's temporary checkpoint exists right now
            wait_until(
                lambda: any((run_dir / "checkpoints").glob(f".step_*.{process.pid}.tmp")),
                process,
                "a checkpoint write",
                poll=0.0005,
            )
        else:
            advance = rng.randint(1, 12)
            wait_until(lambda: steps_since_launch() >= advance, process, f"{advance} steps")
            if not refused:  # while it trains, a second process may not touch the run
                capsys.readouterr()
                assert run_cli("--resume", run_dir) == 2
                assert f"in use by pid {process.pid} on host" in capsys.readouterr().err
                refused = True
            time.sleep(rng.uniform(0.0, 0.02))
        if process.poll() is not None:
            pytest.fail(f"the run ended before kill {kills + 1}: {process.stderr.read()[-3000:]}")
        process.kill()
        process.wait()
        kills += 1
        mid_write += any((run_dir / "checkpoints").glob(f".step_*.{process.pid}.tmp"))
        checked += assert_every_checkpoint_readable(run_dir)
        assert lock.holder(run_dir) is None, "a dead process's lock must not count as held"
        process = run_process("--resume", run_dir)

    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    assert "taking over the stale lock of pid" in stderr
    print(f"{kills} kills ({mid_write} inside a checkpoint write), {checked} checkpoint files verified after kills")
    assert kills >= 5 and refused

    assert_states_equal(final_state(straight_run, MAX_STEPS), final_state(run_dir, MAX_STEPS))
    straight_losses, resumed_losses = scalars(straight_run, "train/loss"), scalars(run_dir, "train/loss")
    assert [step for step, _ in resumed_losses] == list(range(1, MAX_STEPS + 1))
    assert resumed_losses == straight_losses
    assert not list((run_dir / "checkpoints").glob(".*.tmp")) and not (run_dir / "lock").exists()
    meta = json.loads((run_dir / "meta.json").read_text())
    events = [event["event"] for event in meta["history"]]
    # A kill during start-up may come before the resume is recorded; every other one left its event.
    assert meta["status"] == "finished" and events[0] == "start" and set(events[1:]) == {"resume"}
    assert KILLS <= len(events) <= 1 + KILLS
