"""Teacher-forced recurrent latents: the parallel pass, the per-latent mask, and what stays free-running."""

from __future__ import annotations

import pytest
import torch


def forced_model(build, **overrides):
    return build("recurrent", num_latent=3, latent_probe=True, latent_teacher=True, **overrides).double()


def probed(model, prompt, answer, **forcing):
    """(logits (B, P, V), the probe's readings of the latents (B, L, P, 10)) of one pass."""
    readings = model(prompt, answer, heads=True, **forcing)
    return readings.logits, readings.latents


def running_sums(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 10, (n, 2, 4), generator=g)  # (B, W=2, P=4): inputs of latents 1 and 2


def count_backbone_calls(model, fn):
    calls = []
    hook = model.backbone.register_forward_hook(lambda module, args, out: calls.append(out.size(1)))
    try:
        result = fn()
    finally:
        hook.remove()
    return result, calls


def test_all_forced_latents_run_in_one_pass_after_the_prompt(build, random_batch):
    model = forced_model(build)
    prompt, answer = random_batch(3)
    forced = running_sums(3)
    (logits, probe), calls = count_backbone_calls(model, lambda: probed(model, prompt, answer, forced_latents=forced))
    assert calls == [6, 3 + 3]  # the prompt, then 3 latents and 3 answer inputs together
    assert logits.shape == (3, 4, 13) and probe.shape == (3, 3, 4, 10)
    _, free_calls = count_backbone_calls(model, lambda: probed(model, prompt, answer))
    assert free_calls == [6, 1, 1, 1 + 3]  # one latent at a time


def test_the_parallel_pass_equals_the_sequential_one_with_every_latent_forced(build, random_batch):
    model = forced_model(build)
    prompt, answer = random_batch(4)
    forced = running_sums(4)
    parallel = probed(model, prompt, answer, forced_latents=forced)
    everyone = torch.ones(4, 2, dtype=torch.bool)
    (sequential, calls) = count_backbone_calls(
        model, lambda: probed(model, prompt, answer, forced_latents=forced, forced_mask=everyone)
    )
    assert calls == [6, 1, 1, 4]
    for left, right in zip(parallel, sequential):
        torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


def test_a_mask_of_none_forced_is_the_free_running_model(build, random_batch):
    model = forced_model(build)
    prompt, answer = random_batch(4)
    nobody = torch.zeros(4, 2, dtype=torch.bool)
    forced = probed(model, prompt, answer, forced_latents=running_sums(4), forced_mask=nobody)
    for left, right in zip(forced, probed(model, prompt, answer)):
        torch.testing.assert_close(left, right, rtol=0, atol=1e-12)


def test_forcing_feeds_each_latent_its_own_running_sum_per_example(build, random_batch):
    model = forced_model(build)
    prompt, answer = random_batch(2)
    forced = running_sums(2)
    mask = torch.tensor([[True, False], [False, True]])
    _, probe = probed(model, prompt, answer, forced_latents=forced, forced_mask=mask)
    free = probed(model, prompt, answer)[1]
    other = forced.clone()
    other[:, 1] = (other[:, 1] + 1) % 10  # latent 2's running sum: reaches only example 1
    _, changed = probed(model, prompt, answer, forced_latents=other, forced_mask=mask)
    torch.testing.assert_close(probe[0], changed[0], rtol=0, atol=0)
    assert not torch.allclose(probe[1, 2], changed[1, 2])
    torch.testing.assert_close(probe[:, 0], free[:, 0], rtol=0, atol=1e-12)  # latent 0 is never forced
    assert not torch.allclose(probe[0, 1], free[0, 1])  # example 0's latent 1 was forced


def test_teacher_inputs_sum_one_embedding_per_place_and_digit(build):
    model = forced_model(build)
    digits = torch.tensor([[[3, 0, 7, 1]]])
    expected = sum(model.latent_teacher.weight[place * 10 + digit] for place, digit in enumerate([3, 0, 7, 1]))
    torch.testing.assert_close(model.teacher_inputs(digits)[0, 0], expected)


def test_gradients_reach_the_teacher_embedding_and_the_chain(build, random_batch):
    model = forced_model(build)
    prompt, answer = random_batch(3)
    logits, probe = probed(model, prompt, answer, forced_latents=running_sums(3))
    (logits.sum() + probe.sum()).backward()
    assert model.latent_teacher.weight.grad.abs().sum() > 0 and model.latent_proj.weight.grad.abs().sum() > 0


def test_the_teacher_embedding_exists_only_when_asked_and_changes_no_other_initial_weight(build):
    plain = build("recurrent", num_latent=3, latent_probe=True)
    forced = build("recurrent", num_latent=3, latent_probe=True, latent_teacher=True)
    assert plain.latent_teacher is None
    extra = {name for name, _ in forced.named_parameters()} - {name for name, _ in plain.named_parameters()}
    assert extra == {"latent_teacher.weight"}
    for name, value in plain.state_dict().items():
        assert torch.equal(value, forced.state_dict()[name]), name
    assert forced.num_parameters() == plain.num_parameters() + 4 * 10 * 16


@pytest.mark.parametrize("overrides", [{"latent_mode": "pause"}, {"num_latent": 1}])
def test_only_recurrent_chains_of_two_or_more_latents_can_be_forced(build, overrides):
    with pytest.raises(ValueError, match="latent_teacher"):
        build("recurrent", **{"num_latent": 3, "latent_probe": True, "latent_teacher": True, **overrides})
    with pytest.raises(ValueError, match="latent_teacher"):
        build("recurrent", num_latent=3, latent_probe=True)(
            torch.zeros(1, 6, dtype=torch.long),
            torch.zeros(1, 4, dtype=torch.long),
            forced_latents=torch.zeros(1, 2, 4),
        )


def test_generation_never_reads_the_teacher_embedding(build, random_batch):
    model = forced_model(build).eval()
    prompt, _ = random_batch(3)
    before = model.generate(prompt)
    with torch.no_grad():
        model.latent_teacher.weight.mul_(1000.0)
    assert torch.equal(model.generate(prompt), before)
