"""ChainTransformer: the written chain, continuous thoughts and removed tokens line up in training and decoding."""

import pytest
import torch

from latentrun.models.chain import ChainTransformer, chain_transformer

VOCAB, PROMPT_LEN, ANSWER_LEN, CHAIN_LEN = 13, 8, 6, 9  # 3-digit operands: steps of 4 and 5 digits

# (thoughts, removed): explicit chain, Coconut's stages 1 and 2, internalization part way and done.
LAYOUTS = [(0, 0), (1, 4), (2, 9), (0, 3), (0, 9)]


# Abacus place ids of "abc*def=" (least significant first), the chain's two steps and the product.
DIGIT_PLACES = ([1, 2, 3, 0, 1, 2, 3, 0], [1, 2, 3, 4, 5, 6])
CHAIN_PLACES = [1, 2, 3, 4, 1, 2, 3, 4, 5]
ABACUS = dict(position="abacus", abacus_max_offset=3, digit_places=DIGIT_PLACES, chain_places=CHAIN_PLACES)


def build(seed: int = 0, continuous_thoughts: bool = True, **options) -> ChainTransformer:
    torch.manual_seed(seed)
    return chain_transformer(
        d_model=16,
        num_layers=2,
        num_heads=2,
        mlp_ratio=2,
        dropout=0.0,
        vocab_size=VOCAB,
        prompt_len=PROMPT_LEN,
        answer_len=ANSWER_LEN,
        chain="running_sums",
        chain_len=CHAIN_LEN,
        continuous_thoughts=continuous_thoughts,
        **{"position": "learned", "abacus_max_offset": 0, "thought_feedback": "projection", "keep_positions": False}
        | options,
    ).eval()


def inputs(n: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, 10, (n, size), generator=generator) for size in (PROMPT_LEN, ANSWER_LEN, CHAIN_LEN))


POSITIONS = {"learned": {}, "abacus": ABACUS}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_greedy_decoding_with_the_cache_matches_the_reference(layout, position):
    model = build(**POSITIONS[position])
    model.set_layout(*layout)
    prompt, _, _ = inputs()
    cached, reference = model.write(prompt), model.write(prompt, use_cache=False)
    assert torch.equal(cached[0], reference[0]) and torch.equal(cached[1], reference[1])
    torch.testing.assert_close(cached[2], reference[2], rtol=1e-5, atol=1e-5)
    assert cached[0].shape == (5, CHAIN_LEN - layout[1]) and cached[1].shape == (5, ANSWER_LEN)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_teacher_forcing_on_its_own_chain_gives_the_logits_decoding_chose_from(layout, position):
    """Logits for written token i and answer digit j come from the positions decoding reads them at."""
    model = build(**POSITIONS[position])
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


@pytest.mark.parametrize(
    ("layout", "places"),
    [
        ((0, 0), [*DIGIT_PLACES[0], *CHAIN_PLACES, *DIGIT_PLACES[1]]),
        ((1, 4), [*DIGIT_PLACES[0], 0, 1, 2, 3, 4, 5, *DIGIT_PLACES[1], 0, 0, 0]),
        ((0, 3), [*DIGIT_PLACES[0], 4, 1, 2, 3, 4, 5, *DIGIT_PLACES[1], 0, 0, 0]),
        ((2, 9), [*DIGIT_PLACES[0], 0, 0, *DIGIT_PLACES[1], 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_abacus_places_follow_the_layout_thoughts_having_none(layout, places):
    model = build(**ABACUS)
    model.set_layout(*layout)
    model.generate(inputs()[0])
    assert model.backbone.places.tolist() == places


def test_abacus_places_follow_a_loaded_layout():
    model = build(**ABACUS)
    model.set_layout(1, 4)
    prompt, answer, _ = inputs()
    expected = model(prompt, answer)
    copy = build(seed=5, **ABACUS)
    copy(prompt, answer)  # lays the ids out for (0, 0) first
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy(prompt, answer), expected)


def test_abacus_adds_only_its_table_and_needs_the_chain_places():
    learned, abacus = build(seed=2), build(seed=2, **ABACUS)
    assert set(abacus.state_dict()) - set(learned.state_dict()) == {"backbone.wae.weight"}
    for name, value in learned.state_dict().items():
        assert torch.equal(value, abacus.state_dict()[name]), name
    assert abacus.backbone.wae.num_embeddings == 6 + 3 + 1  # ids 0..max place + max offset
    with pytest.raises(ValueError, match="chain_places"):
        build(**{**ABACUS, "chain_places": CHAIN_PLACES[:-1]})


def test_abacus_shifts_once_per_training_pass_on_the_global_generator():
    model = build(**ABACUS).train()
    prompt, answer, chain = inputs()
    torch.manual_seed(4)
    expected = int(torch.randint(0, 4, ()))
    torch.manual_seed(4)
    model(prompt, answer, chain=chain)
    assert int(model.backbone.place_offset) == expected
    rng = torch.get_rng_state()
    model.eval()(prompt, answer)
    assert torch.equal(torch.get_rng_state(), rng), "evaluation must not draw"


@pytest.mark.parametrize("keep_positions", [False, True])
def test_per_example_removal_matches_each_example_alone_at_its_own_layout(keep_positions):
    """Removal smoothing: example i removing `removed + extra[i]` tokens computes what the uniform
    pass at layout (0, removed + extra[i]) computes for it; padding after its end changes nothing."""
    model = build(continuous_thoughts=False, keep_positions=keep_positions)
    prompt, answer, chain = inputs(n=4)
    extra = torch.tensor([0, 2, 1, 6])  # the last removes everything: 3 + 6 = 9
    model.set_layout(0, 3)
    answer_logits, chain_logits = model(prompt, answer, chain=chain, extra_removed=extra)
    assert answer_logits.shape == (4, ANSWER_LEN, VOCAB) and chain_logits.shape == (4, CHAIN_LEN - 3, VOCAB)
    for i, e in enumerate(extra.tolist()):
        model.set_layout(0, 3 + e)
        alone_answer, alone_chain = model(prompt[i : i + 1], answer[i : i + 1], chain=chain[i : i + 1])
        torch.testing.assert_close(answer_logits[i], alone_answer[0], rtol=1e-5, atol=1e-5)
        written = CHAIN_LEN - 3 - e
        torch.testing.assert_close(chain_logits[i, :written], alone_chain[0], rtol=1e-5, atol=1e-5)


def test_coconut_hidden_feedback_feeds_the_final_hidden_state_itself():
    """thought_feedback hidden (Hao et al.): no projection; the thought's input is the final normed
    hidden state at the position before it, rebuilt here from the backbone's own pass."""
    model = build(thought_feedback="hidden")
    assert model.thought_proj is None and not any("thought_proj" in name for name, _ in model.named_parameters())
    prompt, answer, chain = inputs(n=3)
    model.set_layout(1, 4)
    prefix = model.backbone.embed(prompt)  # (B, Tp, D)
    thought = model.backbone(prefix)[:, -1:]  # (B, 1, D), after the final LayerNorm
    rest = model.backbone.embed(torch.cat([chain[:, 4:], answer[:, :-1]], dim=1))
    h = model.backbone(torch.cat([prefix, thought, rest], dim=1))
    expected = model.backbone.logits(h)[:, -ANSWER_LEN:]
    torch.testing.assert_close(model(prompt, answer, chain=chain)[0], expected, rtol=1e-5, atol=1e-5)


def test_keep_positions_leaves_every_written_token_at_its_whole_chain_position():
    """Rebuilt by hand: with 3 tokens removed, the written chain and the answer read position ids
    Tp+3, Tp+4, ... (not Tp, Tp+1, ...), decoded or teacher-forced alike."""
    model = build(continuous_thoughts=False, keep_positions=True)
    prompt, answer, chain = inputs(n=3)
    model.set_layout(0, 3)
    tokens = torch.cat([prompt, chain[:, 3:], answer[:, :-1]], dim=1)  # (B, Tp + 6 + P - 1)
    positions = torch.cat(
        [torch.arange(PROMPT_LEN), torch.arange(PROMPT_LEN + 3, PROMPT_LEN + CHAIN_LEN + ANSWER_LEN - 1)]
    )
    x = model.backbone.wte(tokens) + model.backbone.wpe(positions)
    for block in model.backbone.blocks:
        x = block(x)
    expected = model.backbone.logits(model.backbone.ln_f(x))[:, -ANSWER_LEN:]
    torch.testing.assert_close(model(prompt, answer, chain=chain)[0], expected, rtol=1e-5, atol=1e-5)
    written, decoded, _ = model.write(prompt)
    reference = model.write(prompt, use_cache=False)
    assert torch.equal(written, reference[0]) and torch.equal(decoded, reference[1])
