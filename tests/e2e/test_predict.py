import pytest
from helpers import only_run, run_cli
from support import SMOKE


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("predict")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, "--set", "train.max_steps=20") == 0
    return only_run(runs_dir)


def test_predict_prints_each_problem_with_its_product(trained_run, capsys):
    capsys.readouterr()
    assert run_cli("predict", trained_run, "37*45", "12*99", "0x7") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" = ")[0] for line in lines] == ["37*45", "12*99", "0x7"]
    assert all(line.split(" = ")[1].isdigit() for line in lines)
    assert run_cli("predict", trained_run, "37*45", "12*99", "--bare") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.isdigit() for line in lines)


def test_predict_takes_every_run_a_glob_matches(trained_run, tmp_path, capsys):
    """The README's `predict runs/latent_2digit-* 37*45` failed once two runs matched the glob."""
    import shutil

    twin = tmp_path / trained_run.name
    shutil.copytree(trained_run, twin)
    capsys.readouterr()
    assert run_cli("predict", trained_run, twin, "37*45", "3*4") == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 2 and out.count("37*45 = ") == 2 and out.count("3*4 = ") == 2


def test_predict_without_a_problem_is_a_usage_error(trained_run, capsys):
    assert run_cli("predict", trained_run) == 2
    assert "give one or more problems" in capsys.readouterr().err


def test_the_problem_message_names_both_signs(trained_run, capsys):
    assert run_cli("predict", trained_run, "3+4") == 2
    assert "joined by '*' (or 'x')" in capsys.readouterr().err


def test_predict_accepts_a_run_id(trained_run, capsys):
    assert run_cli("predict", trained_run.name, "3*4", "--runs-dir", trained_run.parent) == 0


@pytest.mark.parametrize("problem", ["37*", "abc", "123*4", "-1*2", "3.5*2"])
def test_predict_rejects_malformed_problems(trained_run, problem, capsys):
    assert run_cli("predict", trained_run, "1*2", problem) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err
