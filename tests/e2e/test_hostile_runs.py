"""Hostile things around a run: malformed `predict` problems, run ids that try to leave the runs
dir, and run-dir files someone else wrote. Each is a clean refusal, never a traceback."""

import json
import shutil

import pytest
from helpers import only_run, run_cli
from support import SMOKE

from latentrun.runs import checkpoint_file as checkpoint


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, "--set", "train.num_threads=1", "--set", "train.max_steps=10") == 0
    return runs_dir


@pytest.fixture
def run_copy(runs_dir, tmp_path):
    copy = tmp_path / "runs" / only_run(runs_dir).name
    shutil.copytree(only_run(runs_dir), copy)
    return copy


MALFORMED = [
    "9" * 5000 + "*1",
    "3*4\n5",
    "1\x00*2",
    "١*٢",
    "３*4",
    "",
    " ",
    "3**4",
    "3*4*5",
    "0x10*2",
    "\x1b[2J*1",
    "1*2; rm -rf /",
    "1e3*2",
    "+1*2",
    "1 2",
    "*",
    "٣" * 3 + "*1",
    "99999999999999999999*1",
]


def test_predict_names_every_malformed_problem_on_its_own_line(runs_dir, capsys):
    capsys.readouterr()
    assert run_cli("predict", only_run(runs_dir), "12*34", *MALFORMED) == 2
    out, err = capsys.readouterr()
    assert out == "", "nothing is predicted until every problem is valid"
    lines = err.splitlines()
    assert len(lines) == len(MALFORMED) and all(line.startswith("error: '") for line in lines), err
    assert "\x1b" not in err and "\x00" not in err and "Traceback" not in err
    assert "has 5000 digits but this run's operands hold at most 2" in err
    assert all(len(line) < 200 for line in lines)


def test_predict_still_reads_leading_zeros_and_spaces(runs_dir, capsys):
    capsys.readouterr()
    assert run_cli("predict", only_run(runs_dir), "07*3", " 4 * 5 ", "0*0") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize(
    "run_id", ["..", ".", "../runs", "../../etc", "/etc", "x/../..", "x\\..\\..", "-rf", ".hidden"]
)
def test_run_ids_cannot_leave_the_runs_dir(runs_dir, run_id, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # so that a relative path typed as such finds nothing either
    assert run_cli("predict", run_id, "1*2", "--runs-dir", runs_dir) == 2
    assert run_cli("--resume", run_id, "--runs-dir", runs_dir) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_symlinked_id_that_leads_outside_is_refused_but_its_path_is_honoured(runs_dir, tmp_path, capsys):
    outside = tmp_path / "elsewhere"
    shutil.copytree(only_run(runs_dir), outside)
    inner_runs = tmp_path / "inner_runs"
    inner_runs.mkdir()
    (inner_runs / "escape").symlink_to(outside)
    capsys.readouterr()
    assert run_cli("predict", "escape", "1*2", "--runs-dir", inner_runs) == 2
    assert f"escape: leads outside {inner_runs}/" in capsys.readouterr().err
    assert run_cli("predict", inner_runs / "escape", "1*2") == 0  # typed as a path: the user's own choice


def test_meta_json_that_is_not_an_object_is_a_clean_error(run_copy, capsys):
    (run_copy / "meta.json").write_text("[1, 2, 3]")
    assert run_cli("--resume", run_copy) == 2
    err = capsys.readouterr().err
    assert "meta.json: not run metadata" in err and "Traceback" not in err
    assert not (run_copy / "lock").exists(), "the lock is released on the way out"


def test_a_frozen_config_with_a_python_tag_is_refused(run_copy, capsys, monkeypatch):
    monkeypatch.chdir(run_copy)
    config_path = run_copy / "config.yaml"
    config_path.write_text(
        config_path.read_text().replace("seed: 0", "seed: !!python/object/apply:os.system ['touch pwned']")
    )
    assert run_cli("--resume", run_copy) == 2
    assert "config.yaml:" in capsys.readouterr().err and not (run_copy / "pwned").exists()


def test_a_verified_checkpoint_holding_the_wrong_things_is_exit_1(run_copy, capsys):
    # Recorded in the manifest by our own writer, so it passes the SHA-256 check: the contents are wrong.
    checkpoint.save(
        run_copy / "checkpoints" / checkpoint.step_file_name(10),
        {"step": 10, "model": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "trainer": {"nonsense": True}},
    )
    (run_copy / "checkpoints" / "best.pt").unlink()
    assert run_cli("--resume", run_copy, "--set", "train.max_steps=12") == 1
    err = capsys.readouterr().err
    assert "checkpoint does not fit this model" in err and "Traceback" not in err
    assert json.loads((run_copy / "meta.json").read_text())["status"] == "crashed"
