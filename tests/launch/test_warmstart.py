"""How a warm start's source weights fit a new model (launch/warmstart.py): shared tensors are
copied, a tensor only the new model has keeps its fresh initialisation, a training aid only the
source has (the teacher embedding of latent forcing, a supervision probe) is left behind, and any
other mismatch is refused."""

from pathlib import Path

import pytest
import torch
from support import SMOKE

from latentrun import config
from latentrun.config import build
from latentrun.launch import warmstart

SUPERVISED = ["loss.latent_supervision_weight=1.0"]
FORCING = [
    "train.latent_forcing.start_step=0",
    "train.latent_forcing.end_step=10",
    "train.latent_forcing.schedule=step",
]
FORCED = SUPERVISED + FORCING  # forcing needs supervised latents


def model_of(overrides: list[str], seed: int = 0) -> torch.nn.Module:
    resolved = config.load(SMOKE, ["model.latent_mode=recurrent", f"seed={seed}", *overrides])
    torch.manual_seed(seed)
    return build.build_model(resolved, build.build_task(resolved))


def source_of(model: torch.nn.Module) -> warmstart.Source:
    state = {"model": {name: tensor.clone() for name, tensor in model.state_dict().items()}, "step": 30}
    return warmstart.Source("src", Path("src-run"), "best", Path("best.pt"), state)


def test_a_forced_and_supervised_source_loads_into_a_model_trained_without_either():
    source = source_of(model_of(FORCED, seed=1))
    target = model_of([], seed=2)
    fit = warmstart.load_weights(target, source)
    assert sorted(fit.left_behind) == ["latent_teacher.weight", "probe.bias", "probe.weight"]
    assert fit.fresh == []
    own = target.state_dict()
    assert set(own) == set(source.state["model"]) - set(fit.left_behind)
    for name, tensor in own.items():
        assert torch.equal(tensor, source.state["model"][name]), name


def test_a_teacher_embedding_the_source_lacks_keeps_its_fresh_initialisation():
    source = source_of(model_of(SUPERVISED, seed=1))
    target = model_of(FORCED, seed=2)
    initial = target.latent_teacher.weight.detach().clone()
    fit = warmstart.load_weights(target, source)
    assert (fit.fresh, fit.left_behind) == (["latent_teacher.weight"], [])
    assert torch.equal(target.latent_teacher.weight, initial)
    assert torch.equal(target.latent_proj.weight, source.state["model"]["latent_proj.weight"])


def test_a_source_tensor_that_is_no_training_aid_is_still_refused():
    source = source_of(model_of(FORCED, seed=1))
    source.state["model"]["backbone.extra.weight"] = torch.zeros(3)
    target = model_of([], seed=2)
    with pytest.raises(warmstart.WarmStartError, match=r"1 tensor\(s\) this model lacks \(backbone.extra.weight\)"):
        warmstart.check_fits(target, source)


def test_a_training_aid_of_another_shape_is_refused_not_left_behind():
    """The aid exists in both models, so it is loaded, and a size mismatch means another architecture."""
    source = source_of(model_of(FORCED, seed=1))
    source.state["model"]["latent_teacher.weight"] = torch.zeros(3, 32)
    with pytest.raises(warmstart.WarmStartError, match="1 of another shape"):
        warmstart.check_fits(model_of(FORCED, seed=2), source)
