"""The figure of record: best.pt graded on the test split once, when a run finishes, and by `eval`."""

import json

import pytest
from helpers import FAST, only_run, run_cli, scalars
from support import SMOKE

from latentrun.runs import checkpoint_file as checkpoint
from latentrun.train.trainer import Trainer


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("finished")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST) == 0
    return only_run(runs_dir)


def test_a_finished_run_logs_the_best_checkpoints_test_figures_once(finished):
    meta = json.loads((finished / "meta.json").read_text())
    best = checkpoint.load(finished / "checkpoints" / "best.pt")
    for name in ("exact_match", "digit_accuracy"):
        [(step, value)] = scalars(finished, f"test/{name}")
        assert step == 40 and value == pytest.approx(meta["test"][name])
    assert meta["test"]["step"] == 40 and meta["test"]["best_step"] == best["step"] and meta["test"]["pairs"] == 200


def test_eval_grades_the_test_split_by_default_and_val_on_request(finished, capsys):
    meta = json.loads((finished / "meta.json").read_text())
    best = checkpoint.load(finished / "checkpoints" / "best.pt")
    capsys.readouterr()
    assert run_cli("eval", finished, "--samples", "5") == 0
    assert "test split (200 pairs" in capsys.readouterr().out
    graded = json.loads((finished / "eval" / "test.json").read_text())
    assert graded["split"] == "test" and graded["step"] == best["step"]
    assert graded["exact_match"] == meta["test"]["exact_match"]  # same weights, same pairs: same count
    assert graded["digit_accuracy"] == meta["test"]["digit_accuracy"]
    assert run_cli("eval", finished, "--split", "val", "--samples", "5") == 0
    graded = json.loads((finished / "eval" / "val.json").read_text())
    assert graded["exact_match"] == best["metrics"]["val/exact_match"]  # what chose the checkpoint
    assert run_cli("eval", finished, "--split", "train") == 2


def test_compare_reports_test_beside_validation(finished, tmp_path, capsys):
    capsys.readouterr()
    assert run_cli("compare", finished, "--out", tmp_path) == 0
    table = capsys.readouterr().out
    assert "test/exact_match (record)" in table and "steps to val exact match" in table
    [run] = json.loads((tmp_path / "compare.json").read_text())["runs"]
    assert run["test_exact_match"] == pytest.approx(
        json.loads((finished / "meta.json").read_text())["test"]["exact_match"]
    )


def test_a_stopped_run_is_not_graded_and_its_resume_is_graded_once(finished, tmp_path):
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, "--stop-at", 20) == 0
    run_dir = only_run(tmp_path)
    assert "test" not in json.loads((run_dir / "meta.json").read_text())
    assert run_cli("--resume", run_dir) == 0
    assert scalars(run_dir, "test/exact_match") == scalars(finished, "test/exact_match")
    assert (
        json.loads((run_dir / "meta.json").read_text())["test"]
        == json.loads((finished / "meta.json").read_text())["test"]
    )


def test_a_run_killed_while_grading_is_graded_when_resumed(finished, tmp_path, monkeypatch):
    def killed(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "test_best", killed)
        assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST) == 130
    run_dir = only_run(tmp_path)
    assert "test" not in json.loads((run_dir / "meta.json").read_text())
    assert run_cli("--resume", run_dir) == 0
    assert scalars(run_dir, "test/exact_match") == scalars(finished, "test/exact_match")
    assert run_cli("--resume", run_dir) == 0  # graded now: nothing more to do, nothing logged twice
    assert len(scalars(run_dir, "test/exact_match")) == 1
