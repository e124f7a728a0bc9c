"""The interface every model implements (forward / generate / num_parameters), run for each kind."""

from __future__ import annotations

import pytest
import torch

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_forward_gives_float32_logits_per_answer_digit(make, random_batch, batch):
    model = make()
    prompt, answer = random_batch(batch)
    logits = model(prompt, answer)
    assert logits.shape == (batch, 4, 13)
    assert logits.dtype == torch.float32


def test_generate_gives_one_token_per_answer_digit(make, random_batch):
    prompt, _ = random_batch(5)
    tokens = make().eval().generate(prompt)
    assert tokens.shape == (5, 4) and tokens.dtype == torch.long


def test_wrong_prompt_or_answer_length_is_refused(make, random_batch):
    model = make()
    prompt, answer = random_batch(2)
    with pytest.raises(ValueError, match="prompt"):
        model(prompt[:, 1:], answer)
    with pytest.raises(ValueError, match="answer"):
        model(prompt, answer[:, 1:])
    with pytest.raises(ValueError, match="prompt"):
        model.generate(prompt[:, 1:])


def test_changing_an_answer_digit_only_changes_later_logits(make, random_batch):
    model = make().double().eval()
    prompt, answer = random_batch(4)
    base = model(prompt, answer)
    for j in range(answer.size(1)):
        changed = answer.clone()
        changed[:, j] = (changed[:, j] + 1) % 10
        logits = model(prompt, changed)
        torch.testing.assert_close(logits[:, : j + 1], base[:, : j + 1], rtol=0, atol=1e-12)
        if j + 1 < answer.size(1):  # answer[:, -1] is never read; every other digit is
            assert not torch.allclose(logits[:, j + 1 :], base[:, j + 1 :], rtol=0, atol=1e-9)


def test_changing_the_prompt_changes_every_logit(make, random_batch):
    model = make().double().eval()
    prompt, answer = random_batch(4)
    changed = prompt.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 10
    diff = (model(changed, answer) - model(prompt, answer)).abs().amax(dim=-1)  # (B, P)
    assert (diff > 1e-9).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_cached_generation_equals_uncached_in_float64(make, scramble, random_batch, seed):
    model = scramble(make(seed=seed), seed).double().eval()
    prompt, _ = random_batch(16, seed=seed)
    cached_tokens, cached_logits = model.generate_with_logits(prompt, use_cache=True)
    tokens, logits = model.generate_with_logits(prompt, use_cache=False)
    assert len(tokens.unique(dim=0)) > 1, "degenerate test: every prompt got the same answer"
    assert torch.equal(cached_tokens, tokens)
    torch.testing.assert_close(cached_logits, logits, rtol=0, atol=1e-12)
    assert torch.equal(model.generate(prompt), model.generate(prompt, use_cache=False))


def test_cached_generation_equals_uncached_in_float32(make, scramble, random_batch):
    model = scramble(make(), 0).eval()
    prompt, _ = random_batch(16)
    cached_tokens, cached_logits = model.generate_with_logits(prompt, use_cache=True)
    tokens, logits = model.generate_with_logits(prompt, use_cache=False)
    assert torch.equal(cached_tokens, tokens)
    torch.testing.assert_close(cached_logits, logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_teacher_forcing_on_the_greedy_answer_reproduces_it(make, scramble, random_batch, seed):
    """forward and generate agree: same first-step logits, and forcing the greedy answer back in
    gives the very logits (hence argmax) that generate chose it from, at every position."""
    model = scramble(make(seed=seed), seed).double().eval()
    prompt, answer = random_batch(16, seed=seed)
    tokens, step_logits = model.generate_with_logits(prompt)
    torch.testing.assert_close(step_logits[:, 0], model(prompt, answer)[:, 0], rtol=0, atol=1e-12)
    forced = model(prompt, tokens)
    torch.testing.assert_close(forced, step_logits, rtol=0, atol=1e-12)
    assert torch.equal(forced.argmax(dim=-1), tokens)


def test_batched_generation_equals_one_prompt_at_a_time(make, scramble, random_batch):
    model = scramble(make(), 0).double().eval()
    prompt, _ = random_batch(5)
    rows = torch.cat([model.generate(prompt[i : i + 1]) for i in range(5)])
    assert torch.equal(model.generate(prompt), rows)


def test_num_parameters_matches_a_count_by_hand(kind, make):
    """Counted from the architecture, not from the module tree: D=16, 2 blocks, MLP ratio 2, 13
    tokens, 6 prompt + 4 answer positions, plus 3 latent positions when the kind has latents."""
    D, V, hidden, blocks = 16, 13, 32, 2
    attention = (D * 3 * D + 3 * D) + (D * D + D)  # qkv and output projection, with biases
    mlp = (D * hidden + hidden) + (hidden * D + D)
    block = 2 * D + attention + 2 * D + mlp  # two LayerNorms (gain and bias each)
    positions = 6 + 4 + (0 if kind == "simple" else 3)
    latent_inputs = {"simple": 0, "latent": 3 * D, "recurrent": D * D + D}[kind]  # vectors, or projection
    # The output head is the token embedding (tied), so V×D appears once.
    expected = V * D + positions * D + blocks * block + 2 * D + latent_inputs
    assert make().num_parameters() == expected


def test_num_heads_must_divide_d_model(make):
    with pytest.raises(ValueError, match="num_heads"):
        make(d_model=16, num_heads=3)


def test_dropout_acts_only_in_train_mode(make, random_batch):
    prompt, answer = random_batch(4)
    model = make(dropout=0.5)
    model.train()
    assert not torch.equal(model(prompt, answer), model(prompt, answer))
    model.eval()
    assert torch.equal(model(prompt, answer), model(prompt, answer))
    # in eval mode the dropout rate does not matter at all
    assert torch.equal(model(prompt, answer), make(dropout=0.0).eval()(prompt, answer))


def test_every_parameter_receives_a_gradient(make, random_batch):
    model = make()
    prompt, answer = random_batch(4)
    model(prompt, answer).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _products(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n random 2-digit × 2-digit products: prompt `ab*cd=` (n, 6) and product (n, 4), LS digit first."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(10, 100, (2, n), generator=g)

    def digits(x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.stack([(x // 10**i) % 10 for i in range(k)], dim=1)

    prompt = torch.cat([digits(a, 2), torch.full((n, 1), 10), digits(b, 2), torch.full((n, 1), 11)], dim=1)
    return prompt, digits(a * b, 4)


def test_overfits_a_tiny_batch(make):
    """The whole path (embeddings, attention, tied head, latents) can learn: memorise 8 products."""
    model = make(d_model=32, num_layers=2, num_heads=4, mlp_ratio=4)
    prompt, answer = _products(8, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        loss = torch.nn.functional.cross_entropy(model(prompt, answer).flatten(0, 1), answer.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24 and torch.equal(model(prompt, answer).argmax(-1), answer):
            break
    model.eval()
    assert torch.equal(model(prompt, answer).argmax(-1), answer), f"loss {loss.item():.3f} at step {step + 1}"
    assert torch.equal(model.generate(prompt), answer)
