"""The shared backbone: KV cache at arbitrary offsets, tied head, GPT-2 init, argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from latentrun.models.config import ModelConfig
from latentrun.models.layers import Backbone


def _backbone(seed: int = 0, max_len: int = 8, **overrides) -> Backbone:
    params = dict(vocab_size=13, d_model=16, num_layers=2, num_heads=4, mlp_ratio=2, dropout=0.0)
    params.update(overrides)
    config = ModelConfig(prompt_len=4, answer_len=4, position="learned", abacus_max_offset=0, **params)
    torch.manual_seed(seed)
    return Backbone(config, max_len=max_len)


@pytest.mark.parametrize("chunks", [[8], [1] * 8, [3, 1, 2, 2], [5, 3]])
def test_cached_chunks_equal_one_full_pass(chunks):
    """Feeding the sequence through the cache in pieces of any size (prefill, single steps, and the
    multi-token continuation that greedy decoding never uses) gives the full causal pass."""
    model = _backbone().double().eval()
    x = torch.randn(3, 8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    full = model(x)
    cache = model.new_cache(batch=3)
    pieces, start = [], 0
    for n in chunks:
        pieces.append(model(x[:, start : start + n], cache))
        start += n
        assert cache.length == start
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-12)


def test_cache_matches_parameter_dtype():
    assert _backbone().double().new_cache(batch=2).k.dtype == torch.float64


def test_sequence_longer_than_the_position_table_is_refused():
    model = _backbone()
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.zeros(1, 9, 16))
    cache = model.new_cache(batch=1)
    model(torch.zeros(1, 6, 16), cache)
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.zeros(1, 3, 16), cache)


def test_num_heads_must_divide_d_model():
    with pytest.raises(ValueError, match=r"num_heads \(5\) must divide d_model \(16\)"):
        _backbone(num_heads=5)


def test_output_head_is_the_token_embedding():
    model = _backbone()
    h = torch.randn(2, 16)
    torch.testing.assert_close(model.logits(h), h @ model.wte.weight.T)
    assert [n for n, p in model.named_parameters() if p.shape == (13, 16)] == ["wte.weight"]


def test_gpt2_init_scales_residual_projections_by_depth():
    num_layers = 4
    model = _backbone(d_model=64, num_layers=num_layers, max_len=64)
    for name, p in model.named_parameters():
        if name.endswith("proj.weight"):
            expected = 0.02 / math.sqrt(2 * num_layers)
        elif name.endswith("weight") and p.dim() == 2:
            expected = 0.02
        else:
            continue
        assert abs(p.std().item() / expected - 1) < 0.1, name
    assert all(block.attn.qkv.bias.abs().sum() == 0 for block in model.blocks)
