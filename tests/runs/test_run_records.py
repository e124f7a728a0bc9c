"""RunDir's meta.json records of a run's life, the only way a session writes meta.json: each one
leaves a file the schema accepts, with what `list` and a resume read back."""

import json

from latentrun import config
from latentrun.runs.run_dir import RunDir

CONFIG = config.resolve({"experiment": "records", "model": {"name": "simple_transformer"}, "seed": 3})
PROGRESS = {"step": 20, "last_loss": 1.25, "best_exact_match": 0.5, "best_step": 20, "elapsed_seconds": 1.23456}


def test_a_run_from_start_to_a_graded_end(tmp_path):
    run = RunDir.create(tmp_path, "records")
    run.record_start(CONFIG, 1, experiment_file="/x/records.yaml", launch="L1", launch_index=0)
    meta = run.meta()
    assert (meta["id"], meta["experiment"], meta["model"], meta["seed"]) == (
        run.name,
        "records",
        "simple_transformer",
        3,
    )
    assert (meta["status"], meta["experiment_file"], meta["launch"], meta["world_size"]) == (
        "created",
        "/x/records.yaml",
        "L1",
        1,
    )
    assert [event["event"] for event in meta["history"]] == ["start"] and meta["pid"] > 0

    run.record_running(parameters=100, max_steps=40, threads=1)
    assert run.meta()["status"] == "running" and run.meta()["parameters"] == 100

    run.record_progress(PROGRESS)
    meta = run.meta()
    assert (meta["status"], meta["step"], meta["elapsed_seconds"]) == ("running", 20, 1.235)

    test = {"test/exact_match": 0.75, "test/loss": 0.5, "best_step": 20, "pairs": 200}
    run.record_end(PROGRESS, "finished", test, max_steps=40)
    meta = run.meta()
    assert meta["status"] == "finished" and meta["error"] is None
    assert meta["test"] == {"step": 20, "best_step": 20, "pairs": 200, "exact_match": 0.75, "loss": 0.5}


def test_a_resume_with_changes_freezes_the_config_and_a_crash_is_named(tmp_path):
    run = RunDir.create(tmp_path, "records")
    run.write_config(CONFIG)
    run.record_start(CONFIG, 1)
    longer = {**CONFIG, "train": {**CONFIG["train"], "max_steps": 60}}
    run.record_resume(longer, 40, {"train.max_steps": [40, 60]}, forced=False, lr_schedule="keep")
    assert run.config()["train"]["max_steps"] == 60
    event = run.meta()["history"][-1]
    assert {k: event[k] for k in ("event", "step", "changes", "forced", "lr_schedule")} == {
        "event": "resume",
        "step": 40,
        "changes": {"train.max_steps": [40, 60]},
        "forced": False,
        "lr_schedule": "keep",
    }
    run.record_crash(RuntimeError("the machine went away"))
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["status"] == "crashed" and meta["error"] == "RuntimeError: the machine went away"
    run.record_tracker_error("mlflow", "OSError while starting: gone")
    run.record_tracker_error("wandb", "ValueError while add_scalar: no")
    assert run.meta()["tracker_errors"] == {
        "mlflow": "OSError while starting: gone",
        "wandb": "ValueError while add_scalar: no",
    }
