"""What each latent position is fed, rebuilt by hand and judged against the model's own logits.

The other model tests compare two paths of the model with each other (cached against uncached,
teacher-forced against decoded); a wrong thought input shared by both passes them all. Here the
reference re-runs the whole growing sequence through the backbone's blocks and final LayerNorm by
hand, with no cache and none of the model's helpers, and builds every latent's input from the rule
the papers give:

- Coconut thought / recurrent latent k: the (learned projection of the) final, normed hidden state
  at the position just before it;
- pause latent k: its learned vector, with its position embedding like any token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentrun.models.chain import ChainTransformer, chain_transformer
from latentrun.models.latent import LatentTransformer, latent_transformer

VOCAB, PROMPT_LEN, ANSWER_LEN, CHAIN_LEN, NUM_LATENT = 13, 8, 6, 9, 3
# Abacus place ids of "abc*def=" (least significant first), the chain's two running sums and the product.
PROMPT_PLACES, ANSWER_PLACES = [1, 2, 3, 0, 1, 2, 3, 0], [1, 2, 3, 4, 5, 6]
CHAIN_PLACES = [1, 2, 3, 4, 1, 2, 3, 4, 5]
POSITIONS = {"learned": {}, "abacus": dict(position="abacus", abacus_max_offset=3)}
TOLERANCE = dict(rtol=1e-5, atol=1e-5)
Ids = tuple[list[int], list[int] | None]  # a sequence's position ids, and its Abacus place ids or None
# Three blocks, so that the first block's state and the last one's are far apart.
SIZES = dict(d_model=16, num_layers=3, num_heads=2, mlp_ratio=2, dropout=0.0)
SIZES.update(vocab_size=VOCAB, prompt_len=PROMPT_LEN, answer_len=ANSWER_LEN)


def project(layer: nn.Linear, h: Tensor) -> Tensor:
    """W h + b, spelled out rather than through the module."""
    return h @ layer.weight.T + layer.bias


# How a Coconut thought is fed back: model options → the thought's input from the final hidden state.
FEEDBACK: dict[str, tuple[dict, Callable[[ChainTransformer, Tensor], Tensor]]] = {
    "projection": ({"thought_feedback": "projection"}, lambda model, h: project(model.thought_proj, h)),
    "hidden": ({"thought_feedback": "hidden"}, lambda model, h: h),  # Hao et al.: the state itself
}


Model = TypeVar("Model", bound=nn.Module)


def scrambled(model: Model, seed: int = 3) -> Model:
    """Every matrix re-drawn at unit scale: at GPT-2 init (std 0.02) every hidden state looks alike,
    and a thought fed from the wrong one would change the logits too little to see."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            norm_gain = p.dim() == 1 and name.endswith("weight")  # a LayerNorm's: around 1
            p.copy_(noise * p.size(-1) ** -0.5 if p.dim() == 2 else 0.3 * noise + norm_gain)
    return model.eval()


def hand_backbone(model: nn.Module, x: Tensor, ids: Ids) -> Tensor:
    """Final, normed hidden states of the embeddings `x` (B, T, D) from sequence position 0: position
    (and Abacus place, unshifted as in evaluation) embeddings of `ids` added, then every block and
    the final norm, no cache."""
    backbone = model.backbone
    positions, places = ids
    T = x.size(1)
    x = x + backbone.wpe.weight[torch.tensor(positions[:T])]
    if places is not None:
        x = x + backbone.wae.weight[torch.tensor(places[:T])]
    for block in backbone.blocks:
        x = block(x)
    return F.layer_norm(x, x.shape[-1:], backbone.ln_f.weight, backbone.ln_f.bias, backbone.ln_f.eps)


def tokens(model: nn.Module, ids: Tensor) -> Tensor:
    return model.backbone.wte.weight[ids]  # (B, T, D)


def logits_of(model: nn.Module, h: Tensor) -> Tensor:
    return h @ model.backbone.wte.weight.T  # tied output head


def fed_back(model: nn.Module, prompt: Tensor, count: int, feed: Callable, ids: Ids) -> Tensor:
    """The prompt's embeddings followed by `count` positions, each fed `feed` of the final hidden
    state at the position before it, the growing sequence re-run from scratch every time."""
    prefix = tokens(model, prompt)
    for _ in range(count):
        h = hand_backbone(model, prefix, ids)[:, -1:]  # (B, 1, D)
        prefix = torch.cat([prefix, feed(model, h)], dim=1)
    return prefix


def hand_greedy(model: nn.Module, prefix: Tensor, steps: int, ids: Ids) -> tuple[Tensor, Tensor]:
    """Greedy decoding after `prefix`, re-running the whole sequence per token: (tokens, logits)."""
    written, chosen_from = [], []
    for _ in range(steps):
        step_logits = logits_of(model, hand_backbone(model, prefix, ids)[:, -1])  # (B, V)
        token = step_logits.argmax(dim=-1)
        written.append(token)
        chosen_from.append(step_logits)
        prefix = torch.cat([prefix, tokens(model, token[:, None])], dim=1)
    return torch.stack(written, dim=1), torch.stack(chosen_from, dim=1)


def problems(n: int = 6, seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, 10, (n, size), generator=generator) for size in (PROMPT_LEN, ANSWER_LEN, CHAIN_LEN))


# ---- Coconut: continuous thoughts of the chain model ------------------------------------------


def chain_model(position: str, feedback: str, keep_positions: bool) -> ChainTransformer:
    torch.manual_seed(0)
    abacus = (
        dict(digit_places=(PROMPT_PLACES, ANSWER_PLACES), chain_places=CHAIN_PLACES) if position == "abacus" else {}
    )
    model = chain_transformer(
        **SIZES,
        chain="running_sums",
        chain_len=CHAIN_LEN,
        continuous_thoughts=True,
        keep_positions=keep_positions,
        **{"position": "learned", "abacus_max_offset": 0, **POSITIONS[position], **abacus, **FEEDBACK[feedback][0]},
    )
    return scrambled(model)


def chain_ids(thoughts: int, removed: int, position: str, keep_positions: bool) -> Ids:
    """Position and place ids of the laid-out sequence, written down from the layout. Thoughts take
    the positions after the prompt and no place; with keep_positions the written chain and the answer
    keep the positions they have with no token removed, else they follow the thoughts."""
    after = PROMPT_LEN + (removed if keep_positions else thoughts)
    positions = list(range(PROMPT_LEN + thoughts)) + list(range(after, after + CHAIN_LEN - removed + ANSWER_LEN))
    if position == "learned":
        return positions, None
    return positions, PROMPT_PLACES + [0] * thoughts + CHAIN_PLACES[removed:] + ANSWER_PLACES


@pytest.mark.parametrize("keep_positions", [False, True])
@pytest.mark.parametrize("feedback", FEEDBACK)
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("layout", [(1, 1), (2, 4), (3, 9)])
def test_coconut_thoughts_are_fed_the_final_hidden_state_before_them(layout, position, feedback, keep_positions):
    model = chain_model(position, feedback, keep_positions)
    model.set_layout(*layout)
    thoughts, removed = layout
    ids = chain_ids(thoughts, removed, position, keep_positions)
    prompt, answer, chain = problems()
    feed = FEEDBACK[feedback][1]
    with torch.no_grad():
        prefix = fed_back(model, prompt, thoughts, feed, ids)  # (B, Tp+T, D)
        rest = tokens(model, torch.cat([chain[:, removed:], answer[:, :-1]], dim=1))  # (B, Cw+P-1, D)
        reference = logits_of(model, hand_backbone(model, torch.cat([prefix, rest], dim=1), ids))
        first = PROMPT_LEN + thoughts - 1  # the position that predicts the first written token
        written = CHAIN_LEN - removed
        want_chain, want_answer = reference[:, first : first + written], reference[:, first + written :]
        decoded_reference = hand_greedy(model, prefix, written + ANSWER_LEN, ids)
        for use_cache in (True, False):
            written_tokens, answer_tokens, answer_logits = model.write(prompt, use_cache=use_cache)
            assert torch.equal(torch.cat([written_tokens, answer_tokens], dim=1), decoded_reference[0])
            torch.testing.assert_close(answer_logits, decoded_reference[1][:, written:], **TOLERANCE)
        no_grad = model(prompt, answer, chain)
    for got_answer, got_chain in (no_grad, model(prompt, answer, chain)):  # preallocated cache, then autograd's
        torch.testing.assert_close(got_answer, want_answer, **TOLERANCE)
        torch.testing.assert_close(got_chain, want_chain, **TOLERANCE)


# ---- pause and recurrent latents of the latent model ------------------------------------------


def latent_model(mode: str, position: str) -> LatentTransformer:
    torch.manual_seed(0)
    abacus = dict(digit_places=(PROMPT_PLACES, ANSWER_PLACES)) if position == "abacus" else {}
    model = latent_transformer(
        **SIZES,
        num_latent=NUM_LATENT,
        latent_mode=mode,
        chain="running_sums",
        latent_probe=True,
        **{"position": "learned", "abacus_max_offset": 0, **POSITIONS[position], **abacus},
    )
    return scrambled(model)


def latent_prefix(model: LatentTransformer, prompt: Tensor, ids: Ids) -> Tensor:
    """The prompt and the latents' inputs (B, Tp+L, D) by the rule of the model's latent_mode."""
    if model.latent_mode == "pause":
        vectors = model.latents[None].expand(prompt.size(0), -1, -1)  # (B, L, D): one learned vector per slot
        return torch.cat([tokens(model, prompt), vectors], dim=1)
    return fed_back(model, prompt, NUM_LATENT, lambda m, h: project(m.latent_proj, h), ids)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("mode", ["pause", "recurrent"])
def test_latents_are_fed_what_their_mode_says(mode, position):
    model = latent_model(mode, position)
    places = None if position == "learned" else PROMPT_PLACES + [0] * NUM_LATENT + ANSWER_PLACES
    ids = list(range(PROMPT_LEN + NUM_LATENT + ANSWER_LEN)), places
    prompt, answer, _ = problems()
    with torch.no_grad():
        prefix = latent_prefix(model, prompt, ids)
        h = hand_backbone(model, torch.cat([prefix, tokens(model, answer[:, :-1])], dim=1), ids)
        want_answer = logits_of(model, h[:, PROMPT_LEN + NUM_LATENT - 1 :])  # (B, P, V)
        latent_states = h[:, PROMPT_LEN : PROMPT_LEN + NUM_LATENT]  # (B, L, D)
        want_probe = project(model.probe, latent_states).view(-1, NUM_LATENT, ANSWER_LEN, 10)
        decoded_reference = hand_greedy(model, prefix, ANSWER_LEN, ids)
        for use_cache in (True, False):
            answer_tokens, answer_logits = model.generate_with_logits(prompt, use_cache=use_cache)
            assert torch.equal(answer_tokens, decoded_reference[0])
            torch.testing.assert_close(answer_logits, decoded_reference[1], **TOLERANCE)
        no_grad = model(prompt, answer, heads=True)[:2]
    for got_answer, got_probe in (no_grad, model(prompt, answer, heads=True)[:2]):
        torch.testing.assert_close(got_answer, want_answer, **TOLERANCE)
        torch.testing.assert_close(got_probe, want_probe, **TOLERANCE)
