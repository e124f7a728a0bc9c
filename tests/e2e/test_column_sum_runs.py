"""Bai et al.'s auxiliary loss at the answer positions: the column head trains beside the product, adds
nothing to what the model writes, resumes bitwise, and is refused where it cannot apply."""

import torch
from helpers import FAST, assert_states_equal, only_run, run_cli, step_file
from support import SMOKE, SMOKE_CHAIN

from latentrun.runs import checkpoint_file as checkpoint
from latentrun.train.losses import CombinedLoss

COLUMNS = ("--set", "loss.column_sum_weight=0.5")  # on smoke.yaml's latent_transformer


def test_the_column_loss_is_its_weighted_mean_squared_error():
    loss = CombinedLoss(accuracy_weight=0.0, latent_supervision_weight=0.0, column_sum_weight=0.5)
    logits = torch.zeros(1, 2, 13)
    plain = loss(logits, torch.tensor([[3, 4]]))
    with_columns = loss(
        logits, torch.tensor([[3, 4]]), columns=torch.tensor([[1.0, 2.0]]), column_target=torch.tensor([[13, 24]])
    )
    # ((1 - 1.3)^2 + (2 - 2.4)^2) / 2 = 0.125
    assert abs(float(with_columns.parts["column_loss"]) - 0.125) < 1e-6
    assert abs(float(with_columns.loss - plain.loss) - 0.5 * 0.125) < 1e-6


def test_a_column_supervised_run_resumes_bitwise(tmp_path):
    straight_dir, stopped_dir = tmp_path / "straight", tmp_path / "stopped"
    assert run_cli(SMOKE, "--runs-dir", straight_dir, *FAST, *COLUMNS) == 0
    assert run_cli(SMOKE, "--runs-dir", stopped_dir, *FAST, *COLUMNS, "--stop-at", "15") == 0
    assert run_cli("--resume", only_run(stopped_dir)) == 0
    straight = checkpoint.load(step_file(only_run(straight_dir), 40))
    assert_states_equal(straight, checkpoint.load(step_file(only_run(stopped_dir), 40)))
    assert {"column_head.weight", "column_head.bias"} <= set(straight["model"])


def test_the_column_loss_on_a_chain_model_is_refused(capsys):
    assert run_cli("validate", SMOKE_CHAIN, "--set", "loss.column_sum_weight=0.5") == 2
    assert "simple_transformer or latent_transformer" in capsys.readouterr().err
