"""train.weight_average in whole runs: the checkpointed average follows its formula over the run's
own weights, best.pt keeps the weights that validation graded, a curriculum stage restarts it, and a
run stopped before or after the average starts resumes bitwise equal to one that never stopped."""

import json

import pytest
import torch
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, scalars, step_file
from support import SMOKE, SMOKE_CHAIN

from latentrun.runs import checkpoint_file as checkpoint

DECAY = 0.75
AVERAGE = ("--set", f"train.weight_average.decay={DECAY}", "--set", "train.weight_average.start_step=30")
EVERY_STEP = ("--set", "train.save_every=1", "--set", "train.keep_last=100", "--set", "train.eval_every=10")


def assert_same_tensors(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


@pytest.fixture(scope="module")
def every_step(tmp_path_factory):
    """A smoke run averaging from update 30 on, with a checkpoint at every update."""
    runs_dir = tmp_path_factory.mktemp("average")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST, *AVERAGE, *EVERY_STEP) == 0
    return only_run(runs_dir)


def test_the_checkpointed_average_follows_its_formula_over_the_runs_own_weights(every_step):
    assert final_state(every_step, 29)["weight_average"] is None
    start = final_state(every_step, 30)
    assert_same_tensors(start["weight_average"], start["model"])  # it starts as a copy
    previous = start["weight_average"]
    for step in range(31, 41):
        state = final_state(every_step, step)
        for name, average in state["weight_average"].items():
            live = state["model"][name]
            expected = DECAY * previous[name] + (1 - DECAY) * live if live.is_floating_point() else live
            torch.testing.assert_close(average, expected, rtol=1e-6, atol=1e-7, msg=f"{name} at {step}")
        previous = state["weight_average"]
    assert any(not torch.equal(previous[name], state["model"][name]) for name in previous)


def test_validation_grades_the_average_and_best_pt_keeps_it(every_step):
    assert [step for step, _ in scalars(every_step, "val_live/exact_match")] == [30, 40]
    assert [step for step, _ in scalars(every_step, "val/exact_match")] == [10, 20, 30, 40]
    best = checkpoint.load(every_step / "checkpoints" / checkpoint.BEST_FILE)
    graded = final_state(every_step, best["step"])
    kept = graded["weight_average"] if best["step"] >= 30 else graded["model"]
    assert_same_tensors(best["model"], kept)
    assert "averaged weights" in (every_step / "train.log").read_text()
    # eval grades best.pt (what val/* measured) by default, the live weights with --checkpoint latest
    for which, tag in (("best", "val/loss"), ("latest", "val_live/loss")):
        assert run_cli("eval", every_step, "--split", "val", "--checkpoint", which, "--samples", "2") == 0
        name = "val.json" if which == "best" else f"val-{which}.json"
        record = json.loads((every_step / "eval" / name).read_text())
        assert record["loss"] == pytest.approx(dict(scalars(every_step, tag))[record["step"]], rel=1e-6)


@pytest.mark.parametrize("stop_at", [12, 33])
def test_a_run_averaging_weights_resumes_bitwise(every_step, tmp_path, stop_at):
    """Stopped before the average exists and after it started: the same average, weights and tags."""
    assert run_cli(SMOKE, "--runs-dir", tmp_path, *FAST, *AVERAGE, *EVERY_STEP, "--stop-at", stop_at) == 0
    resumed = only_run(tmp_path)
    assert run_cli("--resume", resumed) == 0
    straight_end, resumed_end = final_state(every_step, 40), final_state(resumed, 40)
    assert_states_equal(straight_end, resumed_end)
    assert_same_tensors(straight_end["weight_average"], resumed_end["weight_average"])
    for tag in ("train/loss", "val/exact_match", "val/loss", "val_live/exact_match", "test/exact_match"):
        assert scalars(resumed, tag) == scalars(every_step, tag), tag


COCONUT = ("--set", "curriculum.name=coconut", "--set", "curriculum.stage_steps=10")
FROM_START = ("--set", f"train.weight_average.decay={DECAY}", "--set", "train.weight_average.start_step=0")


def test_a_curriculum_stage_restarts_the_average_and_a_resume_at_the_change_keeps_it(tmp_path):
    """Coconut's stages begin at updates 11 and 21: the average restarts as a copy of the weights there."""
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    assert run_cli(SMOKE_CHAIN, "--runs-dir", straight_dir, *FAST, *COCONUT, *FROM_START, *EVERY_STEP) == 0
    straight = only_run(straight_dir)
    for step in (11, 21):
        state = final_state(straight, step)
        assert_same_tensors(state["weight_average"], state["model"])
    before_change = final_state(straight, 10)
    assert not all(
        torch.equal(before_change["weight_average"][n], before_change["model"][n]) for n in before_change["model"]
    )
    # Stopped at the last update of stage 0: the resumed run's first update begins stage 1.
    assert run_cli(SMOKE_CHAIN, "--runs-dir", resumed_dir, *FAST, *COCONUT, *FROM_START, "--stop-at", 10) == 0
    resumed = only_run(resumed_dir)
    assert run_cli("--resume", resumed) == 0
    straight_end = checkpoint.load(step_file(straight, 40))
    resumed_end = checkpoint.load(step_file(resumed, 40))
    assert_same_tensors(straight_end["weight_average"], resumed_end["weight_average"])
    assert scalars(resumed, "val/exact_match") == scalars(straight, "val/exact_match")
