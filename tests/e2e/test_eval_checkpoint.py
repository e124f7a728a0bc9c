"""`eval RUN --checkpoint latest|step_N`: a kept step checkpoint graded instead of best.pt, judged
against what the training loop measured on those weights when it was there, written to files of
their own; a checkpoint the run does not keep is a one-line usage error."""

import json

import pytest
import torch
from helpers import run_cli, scalars, step_file

from latentrun.runs.inference import build_model, predict, trained_model
from latentrun.runs.run_dir import RunDir


def test_a_step_checkpoint_grades_as_training_measured_it(straight, capsys):
    """The smoke run evaluates at updates 20 and 40 and keeps step checkpoints 20, 30 and 40."""
    measured = {tag: dict(scalars(straight, f"val/{tag}")) for tag in ("exact_match", "digit_accuracy", "loss")}
    for which, step in (("step_20", 20), ("latest", 40)):
        assert run_cli("eval", straight, "--split", "val", "--checkpoint", which, "--samples", "5") == 0
        record = json.loads((straight / "eval" / f"val-{which}.json").read_text())
        assert record["step"] == step and record["checkpoint"] == which
        for tag, by_step in measured.items():  # TensorBoard keeps float32
            assert record[tag] == pytest.approx(by_step[step], rel=1e-6), tag
        assert json.loads((straight / "eval" / f"grid-{which}.json").read_text())["step"] == step
        assert f"val split (200 pairs, step {step})" in capsys.readouterr().out
    assert measured["loss"][20] != measured["loss"][40]  # the two checkpoints are told apart
    assert not (straight / "eval" / "val.json").exists()  # best.pt's record is not overwritten


def test_a_problem_file_graded_on_a_step_checkpoint(straight, tmp_path, capsys):
    path = tmp_path / "theirs.txt"
    problems = ["12*34", "7*8", "99*99"]
    path.write_text("\n".join(problems) + "\n")
    assert run_cli("eval", straight, "--file", path, "--checkpoint", "step_30") == 0
    record = json.loads((straight / "eval" / "file-theirs-step_30.json").read_text())
    task, model, state = trained_model(RunDir(straight), which="step_30")
    right = [
        p == int(a) * int(b) for p, (a, b) in zip(predict(task, model, problems), (t.split("*") for t in problems))
    ]
    assert state["step"] == 30 and record["step"] == 30 and record["exact_match"] == sum(right) / 3


def test_a_checkpoint_the_run_does_not_keep_is_a_usage_error(straight, capsys):
    capsys.readouterr()
    assert run_cli("eval", straight, "--checkpoint", "step_7") == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"error: {straight.name} has no checkpoint of step 7 (kept: step_20, step_30, step_40)"
    ]
    assert run_cli("eval", straight, "--checkpoint", "newest") == 2
    err = capsys.readouterr().err
    assert "--checkpoint: expected best, latest or step_N" in err and "Traceback" not in err


def test_predict_answers_from_the_checkpoint_it_is_given(straight, capsys):
    """The reference model is built by hand from the step file's bytes on disk, not looked up by name."""
    problems = [f"{a}*{b}" for a in (3, 47, 86) for b in (9, 58, 71)]
    for which, step in (("step_20", 20), ("latest", 40)):
        capsys.readouterr()
        assert run_cli("predict", straight, *problems, "--bare", "--checkpoint", which) == 0
        printed = [int(line) for line in capsys.readouterr().out.split()]
        task, model = build_model(RunDir(straight), torch.load(step_file(straight, step), weights_only=True))
        assert printed == predict(task, model.eval(), problems), which
    assert run_cli("predict", straight, "12*34", "--checkpoint", "step_7") == 2
    assert "has no checkpoint of step 7" in capsys.readouterr().err
