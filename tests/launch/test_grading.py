"""The final grading's best.pt checks (issue 22 item 12), on a checkpoint folder without a run."""

import pytest
import torch

from latentrun.launch import grading
from latentrun.runs import checkpoint_file as checkpoint
from latentrun.runs.checkpoint_policy import Checkpointer
from latentrun.train.checkpoints_protocol import CheckpointError


def test_a_lost_best_pt_is_rewritten_from_the_best_steps_checkpoint(tmp_path):
    weights = {"w": torch.arange(3.0)}
    checkpoint.save(tmp_path / checkpoint.step_file_name(20), {"step": 20, "model": weights, "config": {"seed": 1}})
    grading._ensure_best(Checkpointer(tmp_path), 20)
    best = checkpoint.load(tmp_path / checkpoint.BEST_FILE)
    assert best["step"] == 20 and torch.equal(best["model"]["w"], weights["w"])


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_lost_best_pt_without_its_step_checkpoint_says_what_to_do(tmp_path, damage):
    checkpoint.save(tmp_path / checkpoint.step_file_name(40), {"step": 40, "model": {}})  # not the best step
    if damage == "truncated":
        checkpoint.save(tmp_path / checkpoint.BEST_FILE, {"step": 20, "model": {"w": torch.ones(50)}})
        best = tmp_path / checkpoint.BEST_FILE
        best.write_bytes(best.read_bytes()[:100])
    with pytest.raises(CheckpointError) as raised:
        grading._ensure_best(Checkpointer(tmp_path), 20)
    message = str(raised.value)
    assert "\n" not in message and "best.pt: " in message
    assert "step_00000020.pt of the best step is gone too" in message and "put a copy of best.pt back" in message
    assert ("missing" in message) == (damage == "missing") and ("truncated" in message) == (damage == "truncated")
