"""ChainTransformer: the written chain, continuous thoughts and removed tokens line up in training and decoding."""

import pytest
import torch

from latentrun.models.chain import ChainTransformer

VOCAB, PROMPT_LEN, ANSWER_LEN, CHAIN_LEN = 13, 8, 6, 9  # 3-digit operands: steps of 4 and 5 digits

# (thoughts, removed): explicit chain, Coconut's stages 1 and 2, internalization part way and done.
LAYOUTS = [(0, 0), (1, 4), (2, 9), (0, 3), (0, 9)]


def build(seed: int = 0, continuous_thoughts: bool = True) -> ChainTransformer:
    torch.manual_seed(seed)
    return ChainTransformer(
        d_model=16,
        num_layers=2,
        num_heads=2,
        mlp_ratio=2,
        dropout=0.0,
        vocab_size=VOCAB,
        prompt_len=PROMPT_LEN,
        answer_len=ANSWER_LEN,
        chain_len=CHAIN_LEN,
        continuous_thoughts=continuous_thoughts,
    ).eval()


def inputs(n: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, 10, (n, size), generator=generator) for size in (PROMPT_LEN, ANSWER_LEN, CHAIN_LEN))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_greedy_decoding_with_the_cache_matches_the_reference(layout):
    model = build()
    model.set_layout(*layout)
    prompt, _, _ = inputs()
    cached, reference = model.write(prompt), model.write(prompt, use_cache=False)
    assert torch.equal(cached[0], reference[0]) and torch.equal(cached[1], reference[1])
    torch.testing.assert_close(cached[2], reference[2], rtol=1e-5, atol=1e-5)
    assert cached[0].shape == (5, CHAIN_LEN - layout[1]) and cached[1].shape == (5, ANSWER_LEN)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_teacher_forcing_on_its_own_chain_gives_the_logits_decoding_chose_from(layout):
    """Logits for written token i and answer digit j come from the positions decoding reads them at."""
    model = build()
    model.set_layout(*layout)
    prompt, _, chain = inputs()
    written, answer, answer_logits = model.write(prompt)
    full = torch.cat([chain[:, : layout[1]], written], dim=1)  # removed tokens are never read
    forced_answer, forced_chain = model(prompt, answer, chain=full)
    torch.testing.assert_close(forced_answer, answer_logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(forced_chain.argmax(-1), written)  # each written token was the greedy choice
    torch.testing.assert_close(model(prompt, answer), answer_logits, rtol=1e-5, atol=1e-5)


def test_removed_tokens_do_not_influence_anything():
    model = build()
    model.set_layout(0, 4)
    prompt, answer, chain = inputs()
    other = chain.clone()
    other[:, :4] = (other[:, :4] + 1) % 10
    for left, right in zip(model(prompt, answer, chain=chain), model(prompt, answer, chain=other)):
        assert torch.equal(left, right)


def test_a_written_token_changes_only_the_logits_after_it():
    model = build()
    prompt, answer, chain = inputs()
    changed = chain.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 10
    (a1, c1), (a2, c2) = model(prompt, answer, chain=chain), model(prompt, answer, chain=changed)
    assert torch.equal(c1[:, :6], c2[:, :6])  # logits up to the one predicting token 5 are causal
    assert not torch.equal(c1[:, 6:], c2[:, 6:]) and not torch.equal(a1, a2)


def test_gradients_flow_through_the_continuous_thoughts():
    model = build().train()
    model.set_layout(2, 9)
    prompt, answer, chain = inputs()
    answer_logits, chain_logits = model(prompt, answer, chain=chain)
    assert chain_logits.shape == (5, 0, VOCAB)
    answer_logits.sum().backward()
    assert model.thought_proj.weight.grad.abs().sum() > 0


def test_layout_is_checked_and_counts_the_tokens_generated():
    model = build(continuous_thoughts=False)
    assert model.generated_tokens == CHAIN_LEN + ANSWER_LEN and model.thought_proj is None
    model.set_layout(0, 9)
    assert model.generated_tokens == ANSWER_LEN
    with pytest.raises(ValueError, match="continuous_thoughts"):
        model.set_layout(1, 4)
    with pytest.raises(ValueError, match="removed must be in 0..9"):
        model.set_layout(0, 10)
    with pytest.raises(ValueError, match="take the removed tokens' places"):
        build().set_layout(5, 4)


def test_the_layout_travels_with_the_weights():
    model = build()
    model.set_layout(2, 9)
    copy = build(seed=5)
    copy.load_state_dict(model.state_dict())
    assert (copy.thoughts, copy.written_len) == (2, 0)
    prompt, _, _ = inputs()
    assert torch.equal(copy.generate(prompt), model.generate(prompt))


def test_shapes_are_refused_when_wrong():
    model = build()
    prompt, answer, chain = inputs()
    with pytest.raises(ValueError, match=r"chain must be \(5, 9\)"):
        model(prompt, answer, chain=chain[:, :8])
