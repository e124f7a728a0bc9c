"""A finished run resumed with a larger train.max_steps: the learning-rate schedule either keeps its
floor (train.schedule_steps pinned to the old length) or stretches over the new length, which
warms the rate up again and says so. Either way meta.json records the choice and the resume is exact."""

import json
import shutil

import pytest
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, scalars

FLOOR = pytest.approx(1e-4)  # smoke: lr 1e-3, min_lr_ratio 0.1


def trainer_state(run_dir, step):
    """The checkpoint's trainer dict without wall-clock time, the one thing a resume may change."""
    return {key: value for key, value in final_state(run_dir, step)["trainer"].items() if key != "elapsed_seconds"}


def last_resume(run_dir):
    return json.loads((run_dir / "meta.json").read_text())["history"][-1]


def test_keeping_the_floor_is_bitwise_an_uninterrupted_run_with_that_schedule(smoke, tmp_path):
    straight_settings = ("--set", "train.max_steps=60", "--set", "train.schedule_steps=40")
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *FAST, *straight_settings) == 0
    assert run_cli(smoke, "--runs-dir", tmp_path / "extended", *FAST) == 0  # finished at 40, and graded
    extended = only_run(tmp_path / "extended")
    # Pinning the span the run had changes nothing it computed: no --force needed.
    assert run_cli("--resume", extended, "--set", "train.max_steps=60", "--set", "train.schedule_steps=40") == 0
    straight = only_run(tmp_path / "straight")

    assert_states_equal(final_state(straight, 60), final_state(extended, 60))
    assert trainer_state(straight, 60) == trainer_state(extended, 60)
    assert scalars(extended, "train/loss") == scalars(straight, "train/loss")
    rates = dict(scalars(extended, "train/lr"))
    assert rates[40] == FLOOR and all(rates[step] == FLOOR for step in range(41, 61))
    event = last_resume(extended)
    assert event["lr_schedule"] == "keep" and event["changes"]["train.max_steps"] == [40, 60]
    assert "stretches the learning-rate schedule" not in (extended / "train.log").read_text()


def test_stretching_warns_records_it_and_resumes_exactly(smoke, tmp_path):
    assert run_cli(smoke, "--runs-dir", tmp_path / "once", *FAST) == 0
    once = only_run(tmp_path / "once")
    twice = tmp_path / "twice" / once.name
    shutil.copytree(once, twice)

    assert run_cli("--resume", once, "--set", "train.max_steps=60") == 0
    log = (once / "train.log").read_text()
    assert "train.max_steps 40 -> 60 stretches the learning-rate schedule" in log
    assert "--set train.schedule_steps=40" in log
    assert last_resume(once)["lr_schedule"] == "stretch"
    rates = dict(scalars(once, "train/lr"))
    assert rates[40] == FLOOR and rates[41] == pytest.approx(
        3.4e-4, rel=1e-4
    )  # 0.1 + 0.45 (1 + cos(36/55 pi)): warmed up again

    # The same stretch taken in two sessions ends bitwise where the one session did.
    assert run_cli("--resume", twice, "--set", "train.max_steps=60", "--stop-at", 50) == 0
    assert run_cli("--resume", twice) == 0
    assert_states_equal(final_state(once, 60), final_state(twice, 60))
    assert trainer_state(once, 60) == trainer_state(twice, 60)
    assert scalars(twice, "train/lr") == scalars(once, "train/lr")


def test_a_span_the_run_never_had_still_needs_force(smoke, tmp_path, capsys):
    assert run_cli(smoke, "--runs-dir", tmp_path, *FAST, "--stop-at", 10) == 0
    run_dir = only_run(tmp_path)
    assert run_cli("--resume", run_dir, "--set", "train.schedule_steps=30") == 2
    assert "--set train.schedule_steps: changes what the run computes (None -> 30)" in capsys.readouterr().err
