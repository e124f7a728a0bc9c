"""The Python API (`latentrun.load`, `latentrun.runs`) gives what the commands give, for one smoke run."""

import json
import subprocess
import sys
import types

import pytest
from helpers import FAST, only_run, run_cli
from support import ROOT, SMOKE

import latentrun
from latentrun.config import ConfigError
from latentrun.runs.run_dir import RunDir


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("api")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, "--set", "train.max_steps=20", *FAST) == 0
    return only_run(runs_dir)


def test_load_by_latest_id_or_path_str_or_path(trained_run):
    runs_dir = str(trained_run.parent)
    by_latest = latentrun.load("latest", runs_dir=runs_dir)
    assert by_latest.path == trained_run and by_latest.id == trained_run.name
    assert latentrun.load(trained_run.name, runs_dir=trained_run.parent).path == trained_run
    assert latentrun.load(str(trained_run)).path == trained_run
    meta = json.loads((trained_run / "meta.json").read_text())
    assert by_latest.meta["id"] == meta["id"] and by_latest.step == meta["best_step"]
    assert by_latest.config["experiment"] == "smoke" and by_latest.config["train"]["max_steps"] == 20
    assert by_latest.config["train"]["num_threads"] == 1  # the frozen, resolved config, overrides included
    assert not by_latest.model.training


def test_predict_gives_the_products_the_command_prints(trained_run, capsys):
    capsys.readouterr()
    assert run_cli("predict", trained_run, "37*45", "12*99", "--bare") == 0
    printed = [int(line) for line in capsys.readouterr().out.split()]
    run = latentrun.load(trained_run)
    assert run.predict("37*45") == printed[0]
    assert run.predict(["37*45", (12, 99)]) == printed


def test_evaluate_gives_the_test_figures_recorded_when_the_run_finished(trained_run):
    recorded = json.loads((trained_run / "meta.json").read_text())["test"]
    graded = latentrun.load(trained_run).evaluate(split="test")
    assert graded["exact_match"] == recorded["exact_match"]
    assert graded["digit_accuracy"] == recorded["digit_accuracy"]
    assert graded["pairs"] == 200  # smoke.yaml's test_size


def test_evaluate_on_a_file_gives_what_eval_file_writes(trained_run, tmp_path, capsys):
    problems = tmp_path / "mine.txt"
    problems.write_text("12*34\n7 * 8 = 56\n3 2 * 4||chain #### 2 9\n")  # plain, plain with product, ICoT (23*4)
    assert run_cli("eval", trained_run, "--file", problems) == 0
    written = json.loads((trained_run / "eval" / "file-mine.json").read_text())
    graded = latentrun.load(trained_run).evaluate(file=str(problems))
    assert graded["problems"] == 3
    assert {key: graded[key] for key in ("exact_match", "digit_accuracy", "sha256")} == {
        key: written[key] for key in ("exact_match", "digit_accuracy", "sha256")
    }


def test_runs_filters_and_adds_columns_as_list_does(trained_run):
    runs_dir = trained_run.parent
    (row,) = latentrun.runs(runs_dir, columns=["optimizer.lr"], where={"train.max_steps": 20})
    assert row["id"] == trained_run.name and row["step"] == 20 and row["config"] == {"optimizer.lr": 0.001}
    assert latentrun.runs(runs_dir, where={"train.max_steps": [21, 30]}) == []
    assert latentrun.runs(runs_dir, experiment="other") == []
    with pytest.raises(ConfigError, match="did you mean 'optimizer.lr'"):
        latentrun.runs(runs_dir, columns=["optimizer.lrr"])


def test_runs_as_a_frame_needs_pandas_only_then(trained_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    assert len(latentrun.runs(trained_run.parent)) == 1
    with pytest.raises(ImportError, match="needs pandas"):
        latentrun.runs(trained_run.parent, frame=True)
    received = []
    fake = types.SimpleNamespace(DataFrame=lambda rows: received.append(rows) or "frame")
    monkeypatch.setitem(sys.modules, "pandas", fake)
    assert latentrun.runs(trained_run.parent, columns=["seed"], frame=True) == "frame"
    (row,) = received[0]
    assert row["id"] == trained_run.name and row["seed"] == 0 and "config" not in row  # config keys as columns


def test_runs_imports_no_torch_and_run_dir_takes_a_string(trained_run):
    script = f"import sys, latentrun; rows = latentrun.runs({str(trained_run.parent)!r}); print(len(rows), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "False"]
    assert RunDir(str(trained_run)).meta()["id"] == trained_run.name


def test_the_readme_example_runs(trained_run, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.splitlines()) == 5
    monkeypatch.chdir(tmp_path)  # the example reads runs/ under the current folder
    (tmp_path / "runs").symlink_to(trained_run.parent)
    scope: dict = {}
    exec(example, scope)
    assert scope["run"].path.name == trained_run.name and [row["id"] for row in scope["rows"]] == [trained_run.name]
