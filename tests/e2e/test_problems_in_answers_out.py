"""A script's round trip: training names its run dir on stdout's last line, and predict reads problems
from stdin (`-`) or a file (`--file`) as well as from its arguments."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST, run_cli
from support import ROOT, SMOKE


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run dir, stdout) of a 10-step smoke run trained by a separate process, as a script starts one."""
    runs_dir = tmp_path_factory.mktemp("roundtrip")
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), str(SMOKE), "--runs-dir", str(runs_dir), "--stop-at", "10", *FAST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (run_dir,) = runs_dir.iterdir()
    return run_dir, done.stdout


def test_training_prints_its_run_dir_as_stdouts_last_line(trained):
    run_dir, stdout = trained
    assert stdout.splitlines()[-1] == str(run_dir)


def test_a_resume_prints_its_run_dir_last_too(trained, capsys):
    run_dir, _ = trained
    capsys.readouterr()
    assert run_cli("--resume", run_dir, "--stop-at", "12") == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(run_dir)


def _predicted(capsys, *args: str) -> list[str]:
    capsys.readouterr()
    assert run_cli("predict", *args) == 0
    return capsys.readouterr().out.splitlines()


def test_predict_reads_problems_from_stdin(trained, capsys, monkeypatch):
    run_dir, _ = trained
    from_arguments = _predicted(capsys, str(run_dir), "37*45", "12*99", "7x8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("37*45\n\n  12*99\n7x8\n"))
    assert _predicted(capsys, str(run_dir), "-") == from_arguments


def test_predict_reads_problems_from_a_file(trained, capsys, tmp_path):
    run_dir, _ = trained
    from_arguments = _predicted(capsys, str(run_dir), "3*4", "37*45", "12*99")
    problems = tmp_path / "problems.txt"
    problems.write_text("37*45\n12*99\n\n")
    assert _predicted(capsys, str(run_dir), "3*4", "--file", str(problems)) == from_arguments


def test_an_unreadable_problem_file_is_one_line_and_exit_2(trained, capsys, tmp_path):
    run_dir, _ = trained
    capsys.readouterr()
    assert run_cli("predict", run_dir, "--file", tmp_path / "missing.txt") == 2
    err = capsys.readouterr().err
    assert err == f"error: --file {tmp_path / 'missing.txt'}: cannot read problems: No such file or directory\n"
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe12*3\n")
    assert run_cli("predict", run_dir, "--file", tmp_path / "binary.txt") == 2
    assert "cannot read problems: not UTF-8 text" in capsys.readouterr().err


def test_predict_without_problems_names_every_way_to_give_them(trained, capsys, monkeypatch):
    run_dir, _ = trained
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n\n"))
    assert run_cli("predict", run_dir, "-") == 2
    assert "- to read them from stdin, or --file PATH" in capsys.readouterr().err


def test_a_300_digit_problem_after_the_run_is_a_problem_not_a_file_name(trained, capsys):
    """Issue 22, item 19: the long problem was tried as a path first and ended in
    '[Errno 36] File name too long', exit 1."""
    run_dir, _ = trained
    huge = "9" * 300 + "*3"
    capsys.readouterr()
    assert run_cli("predict", run_dir, huge) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "has 300 digits" in err and "Errno" not in err
    assert run_cli("predict", huge, "3*4") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 99999") and "not a run directory" in err and "Errno" not in err
    assert Path(run_dir).is_dir()
