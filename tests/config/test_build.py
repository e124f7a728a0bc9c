"""latentrun.config.build: the train section reaches the clipper, loss guard, checkpointing and schedule."""

import pytest
import torch

from latentrun import config
from latentrun.config import build
from latentrun.models.layers import Block

TRAIN = {
    "clip_mode": "autoclip",
    "max_grad_norm": 2.0,
    "clip_percentile": 25,
    "clip_window": 7,
    "loss_spike_factor": None,
    "loss_average_decay": 0.9,
    "emergency_lr_factor": 0.25,
    "emergency_recovery_steps": 9,
    "rollback_after": 2,
    "max_rollbacks": 4,
    "loss_spike_floor": 0.5,
}


def small_config(**train):
    return config.resolve(
        {
            "model": {"name": "simple_transformer", "d_model": 16, "num_layers": 2, "num_heads": 2},
            "train": {"device": "cpu", "batch_size": 4, **train},
        }
    )


def test_clipper_and_guard_take_their_train_keys():
    clipper = build.build_clipper(TRAIN)
    assert (clipper.mode, clipper.max_norm, clipper.percentile, clipper.history.maxlen) == ("autoclip", 2.0, 25, 7)
    guard = build.build_loss_guard(TRAIN)
    assert (
        guard.spike_factor,
        guard.average_decay,
        guard.lr_factor,
        guard.recovery_steps,
        guard.rollback_after,
        guard.max_rollbacks,
        guard.spike_floor,
    ) == (None, 0.9, 0.25, 9, 2, 4, 0.5)


def test_gradient_checkpointing_is_switched_on_in_every_block():
    for enabled in (False, True):
        model = build.build_components(small_config(gradient_checkpointing=enabled), torch.device("cpu")).model
        flags = [block.checkpoint_activations for block in model.modules() if isinstance(block, Block)]
        assert flags == [enabled, enabled]


def test_the_schedule_spans_schedule_steps_and_holds_its_end_past_them():
    cfg = small_config(max_steps=60, schedule_steps=40)
    cfg["scheduler"].update(warmup_steps=0, min_lr_ratio=0.1)
    # Cosine from 1 to 0.1 over 40 steps: halfway (step 20) is 0.55, and the floor from step 40 on.
    assert build.schedule_span(cfg) == 40
    assert build.learning_rate_factor(cfg, 20) == pytest.approx(0.55)
    assert build.learning_rate_factor(cfg, 40) == pytest.approx(0.1)
    assert build.learning_rate_factor(cfg, 55) == pytest.approx(0.1)
    cfg["train"]["schedule_steps"] = None  # the whole run: 60 steps
    assert build.schedule_span(cfg) == 60
    assert build.learning_rate_factor(cfg, 30) == pytest.approx(0.55)


def chain_config(**model):
    return config.resolve(
        {
            "model": {"name": "chain_transformer", "d_model": 16, "num_layers": 1, "num_heads": 2, **model},
            "dataset": {"name": "multiplication", "min_digits": 4, "max_digits": 4, "val_size": 10, "test_size": 10},
            "curriculum": {"name": "internalize", "stage_steps": 5, "tokens_per_stage": 2},
            "train": {"device": "cpu", "batch_size": 4},
        }
    )


def test_a_chain_model_writes_the_running_sums_unless_model_chain_says_otherwise():
    resolved = chain_config()
    assert resolved["model"]["chain"] == "running_sums"  # what a frozen config from before the key meant
    task = build.build_task(resolved)
    assert build.build_model(resolved, task).chain_len == 5 + 6 + 7


def test_model_chain_partial_products_builds_icots_chain_for_the_model_and_its_curriculum():
    resolved = chain_config(chain="partial_products", position="abacus")
    task = build.build_task(resolved)
    model = build.build_model(resolved, task)
    assert (model.chain, model.chain_len) == ("partial_products", 5 + 6 + 6 + 7 + 7 + 8)
    curriculum = build.build_curriculum(resolved, task)
    assert curriculum.chain.widths == (5, 6, 6, 7, 7, 8)
    assert curriculum.last_stage == 20  # 39 tokens, two a stage
