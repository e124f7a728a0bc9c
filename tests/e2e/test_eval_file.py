"""`eval RUN --file PATH`: a run graded on someone else's problems, exact match and digit accuracy
judged against products computed here, and malformed files refused before any model loads."""

import hashlib
import json

from helpers import run_cli

from latentrun.runs.inference import predict, trained_model
from latentrun.runs.run_dir import RunDir

PROBLEMS = [(12, 34), (7, 8), (99, 99), (5, 61), (40, 3)]


def lsb_digits(value: int, width: int) -> str:
    return " ".join(reversed(str(value).zfill(width)))


def test_eval_file_grades_icot_and_plain_lines(straight, tmp_path, capsys):
    path = tmp_path / "theirs.txt"
    lines = [f"{a}*{b}" for a, b in PROBLEMS[:3]]
    lines += [f"{lsb_digits(a, 2)} * {lsb_digits(b, 2)}||chain #### {lsb_digits(a * b, 4)}" for a, b in PROBLEMS[3:]]
    path.write_text("\n".join(lines) + "\n")
    assert run_cli("eval", straight, "--file", path) == 0
    record = json.loads((straight / "eval" / "file-theirs.json").read_text())
    task, model, _ = trained_model(RunDir(straight))
    predicted = predict(task, model, [f"{a}*{b}" for a, b in PROBLEMS])
    right = [p == a * b for p, (a, b) in zip(predicted, PROBLEMS)]
    assert record["problems"] == 5 and record["exact_match"] == sum(right) / 5
    assert 0.0 <= record["digit_accuracy"] <= 1.0 and (record["digit_accuracy"] == 1.0) == all(right)
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"theirs.txt (5 problems, step {record['step']}): exact_match" in capsys.readouterr().out


def test_a_malformed_line_is_named_and_nothing_is_written(straight, tmp_path, capsys):
    path = tmp_path / "broken.txt"
    path.write_text("12*34\n\n3 4 * 1 2||x #### 0 0 0 0\n")
    capsys.readouterr()
    assert run_cli("eval", straight, "--file", path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}:3: the line says 43 * 21 = 0, but it is 903: '3 4 * 1 2||x #### 0 0 0 0'"]
    assert not (straight / "eval" / "file-broken.json").exists()


def test_operands_longer_than_the_run_holds_are_refused(straight, tmp_path, capsys):
    path = tmp_path / "long.txt"
    path.write_text("12*34\n123*4\n")
    capsys.readouterr()
    assert run_cli("eval", straight, "--file", path) == 2
    assert "has operands of 3 digits" in capsys.readouterr().err
