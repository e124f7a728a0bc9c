"""A point's claim: whoever holds it first looks for a run the point already became, so a killed
launcher's child that arrives late (still importing under load) never trains a point again."""

import json

import pytest

from latentrun.launch import record
from latentrun.runs.run_files import RunError


def fake_run(runs_dir, name: str, launch: str, index: int) -> None:
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("experiment: smoke\n")
    (run_dir / "meta.json").write_text(
        json.dumps({"id": name, "status": "finished", "launch": launch, "launch_index": index})
    )


def test_a_late_child_is_refused_a_point_that_already_has_its_run(tmp_path):
    fake_run(tmp_path, "smoke-20261206-000000-aaaa", "L1", 0)
    with pytest.raises(
        RunError, match="point 0: already trained as smoke-20261206-000000-aaaa; a point is not trained twice"
    ):
        record._claim(record.job_folder(tmp_path, "L1", 0), "L1", "0")
    assert record.job_holder(tmp_path, "L1", 0) is None  # refused, and the claim let go


def test_a_point_noted_by_its_launcher_is_refused_too(tmp_path):
    record.note_run(tmp_path, "L1", 2, "smoke-20261206-000000-bbbb")  # meta.json damaged or not yet read
    with pytest.raises(RunError, match="already trained as smoke-20261206-000000-bbbb"):
        record._claim(record.job_folder(tmp_path, "L1", 2), "L1", "2")


def test_a_point_without_a_run_is_claimed(tmp_path):
    fake_run(tmp_path, "smoke-20261206-000000-cccc", "L1", 0)
    fake_run(tmp_path, "smoke-20261206-000000-dddd", "L2", 1)  # another launch's point 1
    record._claim(record.job_folder(tmp_path, "L1", 1), "L1", "1")
    assert record.job_holder(tmp_path, "L1", 1) is not None
