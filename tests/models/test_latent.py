"""What only the latent model has: the latent slots, and num_latent = 0 reducing to the simple model."""
from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("batch", [1, 4])
def test_zero_latents_is_the_simple_model(build, random_batch, batch):
    simple, latent = build("simple", seed=3), build("latent", seed=3, num_latent=0)
    prompt, answer = random_batch(batch)
    assert latent.num_parameters() == simple.num_parameters()
    assert torch.equal(latent(prompt, answer), simple(prompt, answer))
    assert latent(prompt, answer).shape == (batch, 4, 13)
    assert torch.equal(latent.generate(prompt), simple.generate(prompt))


def test_latents_add_num_latent_times_d_model_parameters(build):
    assert build("latent", num_latent=5).num_parameters() == build("simple").num_parameters() + 5 * (16 + 16)
    # each latent slot brings its vector and one position embedding


def test_negative_num_latent_is_refused(build):
    with pytest.raises(ValueError, match="num_latent"):
        build("latent", num_latent=-1)


def test_latent_states_are_the_slots_hidden_states(build, random_batch):
    model = build("latent", num_latent=3).double().eval()
    prompt, _ = random_batch(2)
    states = model.latent_states(prompt)
    assert states.shape == (2, 3, 16)
    torch.testing.assert_close(states, model.backbone(model.prefix(prompt))[:, 6:], rtol=0, atol=0)
    other = prompt.clone()
    other[:, 0] = (other[:, 0] + 1) % 10
    assert not torch.allclose(model.latent_states(other), states)


def test_every_answer_logit_reads_the_latents(build, random_batch):
    model = build("latent", num_latent=3).double().eval()
    prompt, answer = random_batch(2)
    before = model(prompt, answer)
    with torch.no_grad():
        model.latents[0] += torch.randn(16, dtype=torch.float64)  # not a constant: LayerNorm would erase it
    diff = (model(prompt, answer) - before).abs().amax(dim=-1)  # (B, P)
    assert (diff > 1e-9).all()
