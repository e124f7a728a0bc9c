import pytest
from helpers import only_run, run_cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("predict")
    assert run_cli("experiments/smoke.yaml", "--runs-dir", runs_dir, "--set", "train.max_steps=20") == 0
    return only_run(runs_dir)


def test_predict_prints_one_integer_per_problem(trained_run, capsys):
    capsys.readouterr()
    assert run_cli("predict", trained_run, "37*45", "12*99", "0*7") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.isdigit() for line in lines)


def test_predict_accepts_a_run_id(trained_run, capsys):
    assert run_cli("predict", trained_run.name, "3*4", "--runs-dir", trained_run.parent) == 0


@pytest.mark.parametrize("problem", ["37*", "abc", "123*4", "-1*2", "3.5*2"])
def test_predict_rejects_malformed_problems(trained_run, problem, capsys):
    assert run_cli("predict", trained_run, "1*2", problem) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err
