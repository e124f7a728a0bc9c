"""latentrun.config.build: the train section reaches the clipper, loss guard, checkpointing and precision."""

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


def test_auto_precision_probes_a_copy_and_leaves_the_run_untouched():
    cfg = small_config(precision="auto")
    components = build.build_components(cfg, torch.device("cpu"))
    weights = {name: p.clone() for name, p in components.model.named_parameters()}
    rng = torch.get_rng_state()
    choice = build.choose_precision(cfg, components, torch.device("cpu"))
    assert choice.name in ("fp32", "bf16") and set(choice.timings) == {"fp32", "bf16"}
    assert all(torch.equal(p, weights[name]) for name, p in components.model.named_parameters())
    assert all(p.grad is None for p in components.model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_auto_precision_times_the_pass_training_runs(monkeypatch):
    """A chain model trains on its written chain in one parallel pass; the probe must time that
    pass, not greedy decoding (which calling the model without its chain would run)."""
    from latentrun.models.chain import ChainTransformer

    cfg = config.resolve(
        {
            "model": {"name": "chain_transformer", "d_model": 16, "num_layers": 2, "num_heads": 2},
            "dataset": {"name": "multiplication", "max_digits": 3},
            "train": {"device": "cpu", "batch_size": 4, "precision": "auto"},
        }
    )
    components = build.build_components(cfg, torch.device("cpu"))
    calls = []
    original = ChainTransformer.forward

    def forward(self, prompt, answer, chain=None):
        calls.append(chain is not None)
        return original(self, prompt, answer, chain)

    monkeypatch.setattr(ChainTransformer, "forward", forward)
    monkeypatch.setattr(ChainTransformer, "write", lambda *args, **kwargs: pytest.fail("the probe decoded"))
    build.choose_precision(cfg, components, torch.device("cpu"))
    assert calls and all(calls)
