"""latentrun.train.precision.decide: the one place a session's precision is decided, probing `auto`
on a CPU through the trainer's own loss of its first step."""

import pytest
import torch

from latentrun import config
from latentrun.config import build
from latentrun.core.errors import CheckpointError
from latentrun.models.chain import ChainTransformer
from latentrun.train import precision

CPU = torch.device("cpu")


class NoCheckpoints:
    """A Checkpoints that is never asked: deciding a precision saves nothing."""

    def __getattr__(self, name):
        raise AssertionError(f"deciding a precision must not touch checkpoints ({name})")


def trainer_for(model: dict, **dataset):
    cfg = config.resolve(
        {
            "model": {"d_model": 16, "num_layers": 2, "num_heads": 2, **model},
            "dataset": {"name": "multiplication", **dataset},
            "train": {"device": "cpu", "batch_size": 4, "precision": "auto"},
        }
    )
    components = build.build_components(cfg, CPU)
    return components, build.build_trainer(cfg, components, CPU, "fp32", NoCheckpoints())


def decide(components, trainer, checkpoint=None, requested="auto"):
    return precision.decide(
        requested, CPU, checkpoint, components.model, lambda model: trainer.step_output(1, model).loss
    )


def test_auto_probes_a_copy_and_leaves_the_run_untouched():
    components, trainer = trainer_for({"name": "simple_transformer"})
    weights = {name: p.clone() for name, p in components.model.named_parameters()}
    rng = torch.get_rng_state()
    choice = decide(components, trainer)
    assert choice.name in ("fp32", "bf16") and set(choice.timings) == {"fp32", "bf16"}
    assert all(torch.equal(p, weights[name]) for name, p in components.model.named_parameters())
    assert all(p.grad is None for p in components.model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_auto_times_the_pass_training_runs(monkeypatch):
    """A chain model trains on its written chain in one parallel pass; the probe must time that
    pass, not greedy decoding (which calling the model without its chain would run)."""
    components, trainer = trainer_for({"name": "chain_transformer"}, max_digits=3)
    calls = []
    original = ChainTransformer.forward

    def forward(self, prompt, answer, chain=None):
        calls.append(chain is not None)
        return original(self, prompt, answer, chain)

    monkeypatch.setattr(ChainTransformer, "forward", forward)
    monkeypatch.setattr(ChainTransformer, "write", lambda *args, **kwargs: pytest.fail("the probe decoded"))
    decide(components, trainer)
    assert calls and all(calls)


def no_probe(*args):
    raise AssertionError("a resumed auto run must not probe")


@pytest.mark.parametrize(
    "trainer_state,expected",
    [
        ({"precision": "bf16"}, "bf16"),  # the precision this run started with
        ({}, "fp32"),  # a checkpoint from before train.precision existed: those were fp32 runs
        (None, "fp32"),  # older still: no trainer entry at all
    ],
)
def test_a_resumed_auto_run_keeps_the_precision_it_started_with(monkeypatch, trainer_state, expected):
    components, trainer = trainer_for({"name": "simple_transformer"})
    monkeypatch.setattr(precision, "probe_seconds", no_probe)
    checkpoint = {"step": 10} if trainer_state is None else {"step": 10, "trainer": trainer_state}
    choice = decide(components, trainer, checkpoint)
    assert (choice.name, choice.reason, choice.timings) == (expected, "auto: the precision this run started with", None)


def test_a_resumed_run_with_a_precision_set_takes_the_config_and_an_unknown_record_is_refused(monkeypatch):
    components, trainer = trainer_for({"name": "simple_transformer"})
    monkeypatch.setattr(precision, "probe_seconds", no_probe)
    assert decide(components, trainer, {"trainer": {"precision": "bf16"}}, requested="fp16").name == "fp16"
    with pytest.raises(CheckpointError, match="unknown precision 'fp8'"):
        decide(components, trainer, {"trainer": {"precision": "fp8"}})
