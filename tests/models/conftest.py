"""Fixtures for the model tests: tiny models of either kind and batches to feed them.

Helpers are fixtures rather than importable functions so that no test imports `conftest` by name
(other test folders may have their own).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from latentrun.models.latent import latent_transformer, simple_transformer

VOCAB, PROMPT_LEN, ANSWER_LEN = 13, 6, 4  # "ab*cd=" → 4 product digits


LATENT_KINDS = {"latent": "pause", "recurrent": "recurrent"}  # kind → latent_mode


def _build(kind: str, seed: int = 0, **overrides) -> nn.Module:
    params = dict(
        d_model=16,
        num_layers=2,
        num_heads=2,
        mlp_ratio=2,
        dropout=0.0,
        vocab_size=VOCAB,
        prompt_len=PROMPT_LEN,
        answer_len=ANSWER_LEN,
        latent_probe=False,
        position="learned",
        abacus_max_offset=0,
    )
    if kind in LATENT_KINDS:
        params.update(num_latent=3, latent_mode=LATENT_KINDS[kind], chain="running_sums")
    params.update(overrides)
    torch.manual_seed(seed)
    return (latent_transformer if kind in LATENT_KINDS else simple_transformer)(**params)


@pytest.fixture(params=["simple", "latent", "recurrent"])
def kind(request: pytest.FixtureRequest) -> str:
    """Runs a test once per model kind: simple, latent (pause mode) and recurrent latents."""
    return request.param


@pytest.fixture
def make(kind: str) -> Callable[..., nn.Module]:
    """`make(seed=0, **overrides)`: a small model of the current kind, initialised from `seed`."""
    return lambda seed=0, **overrides: _build(kind, seed, **overrides)


@pytest.fixture
def build() -> Callable[..., nn.Module]:
    """`build(kind, seed=0, **overrides)`: a small model of a named kind (simple, latent, recurrent)."""
    return _build


@pytest.fixture
def random_batch() -> Callable[..., tuple[Tensor, Tensor]]:
    """`random_batch(n, seed=0)`: random (prompt (n, 6), answer (n, 4)) tokens of the right shapes."""

    def sample(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        prompt = torch.randint(0, VOCAB, (n, PROMPT_LEN), generator=g)
        return prompt, torch.randint(0, 10, (n, ANSWER_LEN), generator=g)

    return sample


@pytest.fixture
def scramble() -> Callable[[nn.Module, int], nn.Module]:
    """`scramble(model, seed)`: re-draw every matrix at unit scale (embeddings and latents N(0, 1),
    other weights N(0, 1/fan_in)), in place.

    At GPT-2 init (std 0.02) a small model's greedy answers are nearly the same for every prompt,
    which would let a broken cache pass the decoding tests; these weights make them vary.
    """

    @torch.no_grad()
    def redraw(model: nn.Module, seed: int) -> nn.Module:
        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if p.dim() == 2:
                std = 1.0 if name.endswith(("wte.weight", "wpe.weight", "latents")) else p.size(1) ** -0.5
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
        return model

    return redraw
