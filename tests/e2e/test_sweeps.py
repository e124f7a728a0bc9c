"""A sweep for real (issue 13's acceptance): 2 learning rates x 2 warmups x 2 seeds of the smoke
config make 8 runs, one per point of the Cartesian product, whose frozen configs differ exactly in
the swept keys; `list --launch` and `compare --launch` select them, and `--resume --launch` finishes the ones a stop left unfinished."""

import contextlib
import io
import itertools
import json

import pytest
import yaml
from helpers import run_cli
from support import SMOKE

from latentrun import config
from latentrun.launch import record
from latentrun.runs import checkpoint_file as checkpoint

pytestmark = pytest.mark.slow


def capture(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_cli(*args)
    return status, out.getvalue(), err.getvalue()


SWEPT = ["--set", "optimizer.lr=1e-3,3e-3", "--set", "scheduler.warmup_steps=5,10"]
SWEPT_KEYS = {"optimizer.lr", "scheduler.warmup_steps", "seed"}
# Every point (lr, warmup, seed) in launch order, written out: the first axis slowest, the seeds
# (added by the launcher) fastest.
POINTS = [
    (0.001, 5, 1),
    (0.001, 5, 2),
    (0.001, 10, 1),
    (0.001, 10, 2),
    (0.003, 5, 1),
    (0.003, 5, 2),
    (0.003, 10, 1),
    (0.003, 10, 2),
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("sweep") / "runs"
    args = [SMOKE, *SWEPT, "--seeds", "1,2", "--jobs", "2", "--runs-dir", runs_dir]
    status, out, err = capture(*args, "--set", "train.num_threads=1", "--stop-at", "10")
    [launch_dir] = (runs_dir / record.LAUNCHES_DIR).iterdir()
    return {"status": status, "out": out, "err": err, "runs_dir": runs_dir, "launch": launch_dir.name}


def launch_runs(sweep):
    return record.launch_runs(sweep["runs_dir"], sweep["launch"])


def point_of(run_config: dict) -> tuple:
    return run_config["optimizer"]["lr"], run_config["scheduler"]["warmup_steps"], run_config["seed"]


def test_every_point_ran_once_with_its_values(sweep):
    assert sweep["status"] == 0, sweep["err"]
    found = launch_runs(sweep)
    assert sorted(found) == list(range(8))
    for index, path in found.items():
        frozen = config.load(path / "config.yaml")
        assert point_of(frozen) == POINTS[index]
        assert json.loads((path / "meta.json").read_text())["step"] == 10
        [(step, saved)] = checkpoint.step_checkpoints(path / "checkpoints")
        state = checkpoint.load(saved)
        assert step == 10 and point_of(state["config"]) == POINTS[index]  # what it trained with
        assert state["optimizer"]["param_groups"][0]["initial_lr"] == POINTS[index][0]
    configs = [config.load(path / "config.yaml") for path in found.values()]
    for left, right in itertools.combinations(configs, 2):
        assert 0 < len(config.diff(left, right)) and set(config.diff(left, right)) <= SWEPT_KEYS


def test_meta_and_the_sweep_record_name_the_launch(sweep):
    for index, path in launch_runs(sweep).items():
        meta = json.loads((path / "meta.json").read_text())
        assert meta["launch"] == sweep["launch"] and meta["launch_index"] == index
    document = yaml.safe_load(record.record_path(sweep["runs_dir"], sweep["launch"]).read_text())
    swept = {"optimizer.lr": ["1e-3", "3e-3"], "scheduler.warmup_steps": ["5", "10"]}
    as_typed = {0.001: "1e-3", 0.003: "3e-3"}  # labels keep the --set text
    assert document["sweep"] == swept and document["seeds"] == [1, 2]
    assert [job["label"] for job in document["jobs"]] == [
        f"smoke optimizer.lr={as_typed[lr]} scheduler.warmup_steps={warmup} seed={seed}" for lr, warmup, seed in POINTS
    ]
    assert {job["run"] for job in document["jobs"]} == {p.name for p in launch_runs(sweep).values()}
    assert all(job["status"] == "stopped" for job in document["jobs"])


def test_each_run_is_reported_once_and_its_start_is_said(sweep):
    lines = sweep["out"].splitlines()
    assert sum(line.startswith("stopped ") for line in lines) == 8, lines  # once each, not again in a summary
    assert lines[-1] == "8 runs: 8 stopped"
    assert sweep["err"].count("] started smoke") == 8, sweep["err"]
    assert f"list --launch {sweep['launch']}" in sweep["err"]


def test_list_launch_selects_them(sweep, capsys):
    capsys.readouterr()
    assert run_cli("list", "--runs-dir", sweep["runs_dir"], "--launch", sweep["launch"], "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["id"] for row in rows) == sorted(p.name for p in launch_runs(sweep).values())
    assert run_cli("list", "--runs-dir", sweep["runs_dir"], "--launch", "nope", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_resume_launch_then_compare_launch(sweep, tmp_path):
    """Runs in order: the stopped launch goes on to step 40, then compare groups it by lr and warmup."""
    runs_dir, launch = sweep["runs_dir"], sweep["launch"]
    status, out, err = capture("--resume", "--launch", launch, "--jobs", "2", "--runs-dir", runs_dir)
    assert status == 0, err
    assert sum(line.startswith("finished ") for line in out.splitlines()) == 8 and "8 runs: 8 finished" in out
    for path in launch_runs(sweep).values():
        meta = json.loads((path / "meta.json").read_text())
        assert meta["status"] == "finished" and meta["step"] == 40
        assert [event["event"] for event in meta["history"]] == ["start", "resume"]
    status, _, err = capture("--resume", "--launch", launch, "--runs-dir", runs_dir)
    assert status == 0 and "nothing to resume" in err

    status, out, err = capture("compare", "--launch", launch, "--runs-dir", runs_dir, "--out", tmp_path / "cmp")
    assert status == 0, err
    document = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert sorted(len(group["runs"]) for group in document["groups"]) == [2, 2, 2, 2]
    assert {run["id"] for run in document["runs"]} == {p.name for p in launch_runs(sweep).values()}
    assert "optimizer.lr=0.001" in out and "optimizer.lr=0.003" in out

    status, out, err = capture("compare", "--launch", launch, "--runs-dir", runs_dir, "--out", tmp_path / "c2", "--csv")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("id,experiment,model,seed,status,group") and len(lines) == 9
    assert "wrote" in err and "wrote" not in out


def test_a_bad_point_starts_nothing(tmp_path, capsys):
    """Every point is validated first: num_heads 2 cannot divide d_model 33, so no run starts."""
    status = run_cli(SMOKE, "--set", "model.d_model=32,33", "--runs-dir", tmp_path)
    assert status == 2
    err = capsys.readouterr().err
    assert "--set model.d_model=33: model.d_model: num_heads (2) must divide d_model (33)" in err, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_resume_launch_usage_errors(tmp_path, capsys):
    assert run_cli("--resume", "--runs-dir", tmp_path) == 2
    assert "--launch ID" in capsys.readouterr().err
    assert run_cli("--resume", "--launch", "nope", "--runs-dir", tmp_path) == 2
    assert "launch nope: no " in capsys.readouterr().err
    assert run_cli(SMOKE, "--launch", "x", "--runs-dir", tmp_path) == 2
    assert run_cli("--resume", "latest", "--set", "seed=1,2", "--runs-dir", tmp_path) == 2
    assert "a swept --set starts new runs" in capsys.readouterr().err
