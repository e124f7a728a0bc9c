"""W&B (offline mode) and MLflow (a local file store) as `train.loggers`, for real smoke runs:
the tracker run is created once, continued on resume, and holds every step once."""

import json
from pathlib import Path

import pytest
from support import SMOKE

from latentrun.cli import main

pytestmark = pytest.mark.slow


def experiment(tmp_path: Path, loggers: str) -> Path:
    path = tmp_path / "tracked.yaml"
    path.write_text(SMOKE.read_text() + f"  loggers: {loggers}\n")  # train is the file's last section
    return path


def train_stop_resume(tmp_path: Path, path: Path) -> Path:
    runs_dir = tmp_path / "runs"
    assert main([str(path), "--runs-dir", str(runs_dir), "--stop-at", "20", "--set", "train.num_threads=1"]) == 0
    [run_dir] = [p for p in runs_dir.iterdir() if (p / "config.yaml").is_file()]
    assert main(["--resume", str(run_dir)]) == 0
    return run_dir


def test_mlflow_run_continues_on_resume_with_every_step_once(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store behind this
    run_dir = train_stop_resume(tmp_path, experiment(tmp_path, "[tensorboard, mlflow]"))
    state = json.loads((run_dir / "trackers.json").read_text())
    client = mlflow.tracking.MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert run.info.run_id == state["mlflow"]["run_id"] and run.info.run_name == run_dir.name
    assert run.info.status == "FINISHED" and run.data.tags["latentrun.status"] == "finished"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(1, 41))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/exact_match")] == [20, 40]
    assert run.data.params["optimizer.lr"] == "0.001"
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard still beside it


def test_mlflow_drops_the_steps_a_killed_session_already_logged(tmp_path, monkeypatch):
    """A session killed at step 25 after its checkpoint at 20: the resume logs 21.. again."""
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    from latentrun.report.trackers import MLflowLogger

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store behind this
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    first = MLflowLogger(run_dir, "killed", resuming=False)
    for step in range(1, 26):
        first.add_scalar("train/loss", 1.0 / step, step)  # then the process dies: no close
    again = MLflowLogger(run_dir, "killed", resuming=True)
    assert again.run_id == first.run_id
    for step in range(21, 31):
        again.add_scalar("train/loss", 1.0 / step, step)
    again.end_session("finished", 30)
    again.close()
    history = mlflow.tracking.MlflowClient().get_metric_history(first.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, 31))


def test_wandb_offline_run_continues_on_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install -e '.[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = train_stop_resume(tmp_path, experiment(tmp_path, "[tensorboard, wandb]"))
    state = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    assert state["step"] == 40
    sessions = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(sessions) == 2 and all(p.name.endswith(state["id"]) for p in sessions)  # one W&B run, two sessions
    assert all(list(p.glob("*.wandb")) for p in sessions)


def test_a_missing_tracker_package_is_a_config_error_before_any_run(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("no wandb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    path = experiment(tmp_path, "[wandb]")
    assert main([str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "pip install -e '.[wandb]'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_tracker_that_fails_mid_run_never_stops_training(tmp_path, monkeypatch):
    """Issue 22 item 15: the MLflow folder deleted mid-run killed training with chained tracebacks,
    and every resume died the same way."""
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    import shutil

    from latentrun.report.trackers import MLflowLogger

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    original = MLflowLogger.add_scalar

    def delete_the_store_at_step_15(self, tag, value, step):
        if step == 15:
            shutil.rmtree(store)
        original(self, tag, value, step)

    monkeypatch.setattr(MLflowLogger, "add_scalar", delete_the_store_at_step_15)
    runs_dir = tmp_path / "runs"
    path = experiment(tmp_path, "[tensorboard, mlflow]")
    assert main([str(path), "--runs-dir", str(runs_dir), "--stop-at", "20", "--set", "train.num_threads=1"]) == 0
    [run_dir] = [p for p in runs_dir.iterdir() if (p / "config.yaml").is_file()]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "stopped" and meta["step"] == 20
    assert "mlflow" in meta["tracker_errors"]
    assert main(["--resume", str(run_dir)]) == 0  # the recorded MLflow run is gone: a new one is started
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["step"] == 40


@pytest.mark.parametrize("damaged", [{"mlflow": "x"}, {"mlflow": {"run_id": "0123456789abcdef"}}, ["x"]])
def test_a_damaged_trackers_json_starts_a_new_tracker_run(tmp_path, monkeypatch, damaged):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    from latentrun.report.trackers import MLflowLogger

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run_dir = tmp_path / "run-1"
    run_dir.mkdir()
    (run_dir / "trackers.json").write_text(json.dumps(damaged))
    resumed = MLflowLogger(run_dir, "damaged", resuming=True)
    resumed.add_scalar("train/loss", 0.5, 1)
    resumed.close()
    assert json.loads((run_dir / "trackers.json").read_text())["mlflow"]["run_id"] == resumed.run_id
    history = mlflow.tracking.MlflowClient().get_metric_history(resumed.run_id, "train/loss")
    assert [m.step for m in history] == [1]


def test_a_guarded_tracker_warns_once_and_records_the_failure(tmp_path):
    from latentrun.report.trackers import Guarded
    from latentrun.runs import run_files

    run_files.write_meta(tmp_path, {"id": "r", "status": "running"})
    calls = []

    class Flaky:
        def __init__(self, run_dir, experiment, resuming):
            pass

        def add_scalar(self, tag, value, step):
            calls.append(step)
            if step == 2:
                raise ConnectionError("tracking server gone\nsecond line")

        def close(self):
            calls.append("close")

    guarded = Guarded("mlflow", Flaky, tmp_path, "x", False)
    for step in (1, 2, 3):
        guarded.add_scalar("train/loss", 1.0, step)
    guarded.close()
    assert calls == [1, 2]  # dropped after its failure, close included
    errors = run_files.read_meta(tmp_path)["tracker_errors"]
    assert errors == {"mlflow": "ConnectionError while add_scalar: tracking server gone"}
    Guarded("wandb", lambda *a: 1 / 0, tmp_path, "x", False).flush()  # failing to start is contained too
    assert run_files.read_meta(tmp_path)["tracker_errors"]["wandb"].startswith("ZeroDivisionError while starting")
