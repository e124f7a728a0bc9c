"""The end of a run (issue 22 items 9-12): a stop signal during the final test grading is an
interruption like any other, a resume grades the run once (test/* and summary/* once at the last
step, no stale error), and a lost or damaged best.pt is restored from its step checkpoint or named."""

import json
import os
import signal

import pytest
from helpers import FAST, only_run, run_cli, scalars
from support import SMOKE

from latentrun.train.trainer import Trainer

pytestmark = pytest.mark.slow
KEEP_ALL = ("--set", "train.keep_last=10")  # the step checkpoint of the best step stays on disk


def meta(run_dir):
    return json.loads((run_dir / "meta.json").read_text())


def signalled_while_grading(monkeypatch, signum):
    original = Trainer.test_best

    def test_best(self):
        os.kill(os.getpid(), signum)  # delivered to this (main) thread before evaluation returns
        return original(self)

    monkeypatch.setattr(Trainer, "test_best", test_best)


def assert_graded_once(run_dir):
    data = meta(run_dir)
    assert data["status"] == "finished" and data["test"]["step"] == 40 and not data.get("error"), data
    for tag in ("test/exact_match", "test/digit_accuracy", "summary/best_exact_match", "summary/elapsed_seconds"):
        assert [step for step, _ in scalars(run_dir, tag)].count(40) == 1, tag


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_while_grading_interrupts_and_the_resume_grades_once(tmp_path, monkeypatch, signum):
    runs_dir = tmp_path / "runs"
    signalled_while_grading(monkeypatch, signum)
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST) == 130
    run_dir = only_run(runs_dir)
    data = meta(run_dir)
    assert data["status"] == "interrupted" and "test" not in data and not data.get("error"), data
    monkeypatch.undo()
    assert run_cli("--resume", run_dir) == 0
    assert_graded_once(run_dir)


def test_test_figures_in_tensorboard_but_not_in_meta_are_not_logged_twice(tmp_path):
    """Killed (or out of disk) after TensorBoard had the test figures and before meta.json did."""
    runs_dir = tmp_path / "runs"
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST) == 0
    run_dir = only_run(runs_dir)
    data = meta(run_dir)
    del data["test"]
    data.update(status="crashed", error="OSError: [Errno 28] No space left on device")
    (run_dir / "meta.json").write_text(json.dumps(data))
    assert run_cli("--resume", run_dir) == 0
    assert_graded_once(run_dir)


@pytest.fixture
def ungraded(tmp_path, monkeypatch):
    """A run stopped by SIGINT while grading: at its last step, with no test record."""
    runs_dir = tmp_path / "runs"
    signalled_while_grading(monkeypatch, signal.SIGINT)
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST, *KEEP_ALL) == 130
    monkeypatch.undo()
    return only_run(runs_dir)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_lost_best_pt_is_restored_from_the_best_steps_checkpoint(ungraded, damage):
    best = ungraded / "checkpoints" / "best.pt"
    if damage == "missing":
        best.unlink()
    else:
        best.write_bytes(best.read_bytes()[:100])
    assert run_cli("--resume", ungraded) == 0
    data = meta(ungraded)
    assert data["test"]["best_step"] == data["best_step"]
    assert_graded_once(ungraded)
