"""What only the latent model has: the latent slots, and num_latent = 0 reducing to the simple model."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("mode", ["latent", "recurrent"])
@pytest.mark.parametrize("batch", [1, 4])
def test_zero_latents_is_the_simple_model(build, random_batch, batch, mode):
    simple, latent = build("simple", seed=3), build(mode, seed=3, num_latent=0)
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


# ---- recurrent latents and the probe ------------------------------------------------------------


def test_unknown_latent_mode_is_refused(build):
    with pytest.raises(ValueError, match="latent_mode"):
        build("latent", latent_mode="pondering")


def test_parameter_counts_of_each_mode_and_the_probe(build):
    simple = build("simple").num_parameters()
    D, L, P = 16, 3, 4
    assert build("latent").num_parameters() == simple + L * D + L * D  # vectors + positions
    assert build("recurrent").num_parameters() == simple + L * D + D * D + D  # positions + projection
    assert build("recurrent", latent_probe=True).num_parameters() == simple + L * D + D * D + D + D * P * 10 + P * 10


def test_each_recurrent_latent_is_the_projected_state_before_it(build, scramble, random_batch):
    """The definition: latent k's input is latent_proj(final hidden state at the position before it)."""
    model = scramble(build("recurrent", seed=1), 1).double().eval()
    prompt, _ = random_batch(3)
    prefix = model.prefix(prompt)  # (B, Tp+L, D), built by re-running the growing sequence
    h = model.backbone(prefix)  # (B, Tp+L, D)
    torch.testing.assert_close(prefix[:, :6], model.backbone.embed(prompt), rtol=0, atol=0)
    for k in range(3):
        torch.testing.assert_close(prefix[:, 6 + k], model.latent_proj(h[:, 5 + k]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_forward_through_the_cache_equals_one_full_pass_with_the_same_gradients(
    build, scramble, random_batch, seed
):
    """Training runs the latents one position at a time through a gradient-carrying cache; that must
    be the same function, with the same gradients, as one causal pass over the re-run prefix."""
    model = scramble(build("recurrent", seed=seed, dropout=0.0), seed).double()
    prompt, answer = random_batch(4, seed=seed)
    logits = model(prompt, answer)  # (B, P, V)
    sequence = torch.cat([model.prefix(prompt), model.backbone.embed(answer[:, :-1])], dim=1)
    reference = model.backbone.logits(model.backbone(sequence)[:, 6 + 3 - 1 :])
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-12)
    names, params = zip(*model.named_parameters())
    weights = torch.randn(logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad((logits * weights).sum(), params)
    reference_grads = torch.autograd.grad((reference * weights).sum(), params)
    for name, got, want in zip(names, grads, reference_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=name)
    # The reference re-runs the prefix differentiably, so equal gradients mean they flow through the
    # chain of latents; the projection that forms the chain gets one.
    assert grads[names.index("latent_proj.weight")].abs().sum() > 0
    with torch.no_grad():  # the preallocated inference cache gives the same logits
        torch.testing.assert_close(model.eval()(prompt, answer), logits.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode_kind", ["latent", "recurrent"])
def test_probe_reads_every_latent_state(build, scramble, random_batch, mode_kind):
    model = scramble(build(mode_kind, seed=2, latent_probe=True), 2).double().eval()
    prompt, answer = random_batch(5)
    logits, probe_logits = model(prompt, answer, with_probe=True)
    assert probe_logits.shape == (5, 3, 4, 10)
    torch.testing.assert_close(logits, model(prompt, answer), rtol=0, atol=0)
    expected = model.probe(model.latent_states(prompt)).view(5, 3, 4, 10)
    torch.testing.assert_close(probe_logits, expected, rtol=0, atol=1e-12)


def test_with_probe_needs_a_model_built_with_one(build, random_batch):
    prompt, answer = random_batch(2)
    with pytest.raises(ValueError, match="latent_probe"):
        build("recurrent")(prompt, answer, with_probe=True)
