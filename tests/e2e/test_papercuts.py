"""Issue 13's papercuts that need a real run: what a stop says before any evaluation, a --stop-at
behind the run, the next commands after a run, and --set blamed for what it broke."""

import json

import pytest
from helpers import FAST, only_run, run_cli
from support import SMOKE


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A smoke run stopped at step 7, before its first evaluation (eval_every 20)."""
    runs_dir = tmp_path_factory.mktemp("papercuts")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_cli(SMOKE, "--runs-dir", runs_dir, "--stop-at", 7, *FAST) == 0
    return {"run": only_run(runs_dir), "err": err.getvalue(), "runs_dir": runs_dir}


def test_a_stop_before_any_evaluation_says_so(stopped):
    assert "stopped at step 7: not evaluated yet" in stopped["err"], stopped["err"]
    assert "-1.0000" not in stopped["err"]


def test_the_end_of_a_run_names_the_next_commands(stopped):
    run, runs_dir = stopped["run"], stopped["runs_dir"]
    err = stopped["err"]
    assert f"--resume {run.name} --runs-dir {runs_dir}" in err  # stopped: resuming is the first thing
    assert f"predict {run.name} 12*34 --runs-dir {runs_dir}" in err
    assert f"eval {run.name} --runs-dir {runs_dir}" in err
    assert f"tensorboard --logdir {run}" in err


def test_a_stop_at_behind_the_run_is_refused_not_silent(stopped, capsys):
    run = stopped["run"]
    before = json.loads((run / "meta.json").read_text())["history"]
    assert run_cli("--resume", run, "--stop-at", 3) == 2
    err = capsys.readouterr().err
    assert f"--stop-at 3: {run.name} is already at step 7" in err, err
    assert json.loads((run / "meta.json").read_text())["history"] == before  # no resume recorded
    assert run_cli("--resume", run, "--stop-at", 7) == 2


def test_set_is_blamed_for_the_cross_key_problem_it_caused(capsys):
    assert run_cli("validate", SMOKE, "--set", "model.d_model=33") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --set model.d_model=33: model.d_model: num_heads (2) must divide d_model (33)"), err
    assert "smoke.yaml:9" not in err
