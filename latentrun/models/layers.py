"""Building blocks shared by every model: a pre-LN GPT backbone, its KV cache, and greedy decoding.

The backbone reads input *embeddings* rather than token ids, so a model can splice in vectors that
are not tokens (learned latents today, projected hidden states later) and still reuse the same
blocks, position table, cache and decoding loop. Shapes: B batch, T sequence, D d_model, V vocab,
nh heads, hs head size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from latentrun.models.config import ModelConfig


class KVCache:
    """Keys and values of every layer for the positions decoded so far.

    Preallocated to the backbone's full length rather than grown by concatenation: the maximum
    length is known up front and small, so each step writes one slot in place instead of copying
    the whole history, and memory stays fixed for the whole call. One tensor per role holds every
    layer, (num_layers, B, nh, max_len, hs); `length` counts the positions already stored.
    """

    def __init__(
        self,
        num_layers: int,
        batch: int,
        num_heads: int,
        max_len: int,
        head_size: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (num_layers, batch, num_heads, max_len, head_size)
        # Uninitialised: a slot is only ever read after `update` wrote it, and zero-filling what can
        # be hundreds of MB (batch 1000, 3-digit model) cost a few percent of a whole decode.
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)
        self.length = 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store one layer's new keys/values (B, nh, T, hs); return all so far (B, nh, length+T, hs)."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, steps: int) -> None:
        """Mark `steps` more positions as stored, once every layer has written them."""
        self.length += steps


class GradKVCache:
    """A KVCache that autograd can flow through, for training passes that decode step by step.

    Writing into a preallocated tensor in place would modify keys that earlier attention steps
    saved for backward, which autograd refuses; here every update concatenates instead, so the
    positions stored earlier stay untouched. Same interface as KVCache.
    """

    def __init__(self, num_layers: int) -> None:
        self.k: list[Tensor | None] = [None] * num_layers
        self.v: list[Tensor | None] = [None] * num_layers
        self.length = 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append one layer's new keys/values (B, nh, T, hs); return all so far (B, nh, length+T, hs)."""
        old_k, old_v = self.k[layer], self.v[layer]
        all_k = k if old_k is None else torch.cat([old_k, k], dim=2)
        all_v = v if old_v is None else torch.cat([old_v, v], dim=2)
        self.k[layer], self.v[layer] = all_k, all_v
        return all_k, all_v

    def advance(self, steps: int) -> None:
        """Mark `steps` more positions as stored, once every layer has written them."""
        self.length += steps


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through `scaled_dot_product_attention`, optionally cached."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, layer: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.layer = layer  # which slot of a KVCache this module owns
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: KVCache | GradKVCache | None = None) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        hs = D // self.num_heads
        q, k, v = (t.view(B, T, self.num_heads, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        dropout_p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            # New queries sit at positions start..start+T-1 and may see every cached key up to
            # themselves. `is_causal` would align the mask top-left, which is wrong once start > 0.
            start = cache.length
            k, v = cache.update(self.layer, k, v)  # (B, nh, start+T, hs)
            if T == 1:  # one new position sees every stored key: no mask, and SDPA runs faster without
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            elif start == 0:  # a prefill: the plain causal pass
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            else:
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: D → mlp_ratio·D → D with GELU."""

    def __init__(self, d_model: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, mlp_ratio * d_model)
        self.proj = nn.Linear(mlp_ratio * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, num_heads: int, mlp_ratio: int, dropout: float, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, num_heads, dropout, layer)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio, dropout)
        self.checkpoint_activations = False  # set by set_gradient_checkpointing, like train()/eval()

    def forward(self, x: Tensor, cache: KVCache | GradKVCache | None = None) -> Tensor:
        checkpointed = self.checkpoint_activations and torch.is_grad_enabled()
        if checkpointed and cache is None:
            # Keep only the block's input and recompute the rest during backward. Non-reentrant
            # checkpointing saves the RNG state and replays it, so recomputed dropout masks are the
            # forward pass's own and the gradients equal those of the plain block.
            return checkpoint(self._forward, x, use_reentrant=False, preserve_rng_state=True)
        # With a cache, attention appends to it: recomputing that half would append twice, so
        # only the side-effect-free MLP half is checkpointed (recurrent latents train this way).
        x = x + self.attn(self.ln_1(x), cache)
        if checkpointed:
            return checkpoint(self._mlp_half, x, use_reentrant=False, preserve_rng_state=True)
        return self._mlp_half(x)

    def _forward(self, x: Tensor) -> Tensor:
        return self._mlp_half(x + self.attn(self.ln_1(x)))

    def _mlp_half(self, x: Tensor) -> Tensor:
        return x + self.mlp(self.ln_2(x))


def set_gradient_checkpointing(model: nn.Module, enabled: bool) -> None:
    """Trade compute for memory in every transformer block of `model`: activations inside a block
    are recomputed in the backward pass instead of being kept from the forward pass."""
    for module in model.modules():
        if isinstance(module, Block):
            module.checkpoint_activations = enabled


class Backbone(nn.Module):
    """Token embedding (tied to the output head), learned positions, pre-LN blocks, final LayerNorm.

    `forward` takes embeddings, so callers decide what goes in each slot; `embed` and `logits`
    convert between token ids and that space with the one shared (tied) matrix.
    """

    def __init__(self, config: ModelConfig, *, max_len: int, places: Sequence[int] | None = None) -> None:
        """`max_len` positions, laid out by the model; `places` (max_len,) adds place-value
        embeddings (see `add_places`)."""
        super().__init__()
        d_model, num_heads, num_layers = config.d_model, config.num_heads, config.num_layers
        if d_model % num_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must divide d_model ({d_model})")
        self.max_len = max_len
        self.num_heads = num_heads
        self.wte = nn.Embedding(config.vocab_size, d_model)
        self.wpe = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, num_heads, config.mlp_ratio, config.dropout, layer=i) for i in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.apply(_init_gpt2)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # residual outputs: keep the stream's variance flat in depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * num_layers))
        # (from, size): sequence positions from `from` on read position id + size, so that tokens
        # after removed ones keep the ids they had (a chain model's keep_positions); (0, 0): none.
        self.position_gap: tuple[int, int] = (0, 0)
        self.places: Tensor
        self.place_offset: Tensor
        self.wae: nn.Embedding | None = None  # place-value (Abacus) embeddings
        if places is not None:
            self.add_places(places, config.abacus_max_offset)

    def add_places(self, places: Sequence[int], max_place_offset: int) -> None:
        """Add place-value (Abacus) embeddings: `places` (max_len,) gives each position's place id,
        0 for none. Drawn from the global generator when called, so a model calls it after building
        its other parameters and they keep the initialisation they have without it."""
        if len(places) != self.max_len:
            raise ValueError(f"places must give one id per position ({self.max_len}), got {len(places)}")
        self.register_buffer("places", torch.tensor(places, dtype=torch.long), persistent=False)  # (max_len,)
        self.register_buffer("place_offset", torch.zeros((), dtype=torch.long), persistent=False)
        self.max_place_offset = max_place_offset
        self.wae = nn.Embedding(max(places) + max_place_offset + 1, self.wte.embedding_dim)  # row 0: not a digit
        nn.init.normal_(self.wae.weight, mean=0.0, std=0.02)

    def draw_place_offset(self) -> None:
        """Before each training forward pass: one random shift of every digit's place id for the
        whole batch, uniform in 0..max_place_offset (McLeish et al. 2024), so that the ids of
        places beyond the trained operand lengths get trained too. Drawn from the global torch CPU
        generator, which checkpoints save, so a resumed run draws the same shifts; it holds for
        every backbone call of the pass (recurrent latents run several). Evaluation uses no shift."""
        if self.wae is not None and self.training and self.max_place_offset > 0:
            self.place_offset.fill_(int(torch.randint(0, self.max_place_offset + 1, ())))

    def embed(self, tokens: Tensor) -> Tensor:
        """Token ids (B, T) → embeddings (B, T, D), without positions (forward adds those)."""
        return self.wte(tokens)

    def logits(self, h: Tensor) -> Tensor:
        """Hidden states (..., D) → logits (..., V) through the tied embedding matrix."""
        return F.linear(h, self.wte.weight)

    def new_cache(self, batch: int, differentiable: bool = False) -> KVCache | GradKVCache:
        """An empty cache: preallocated for the full sequence, matching the parameters' dtype and
        device, or (`differentiable`) one that autograd can flow through."""
        if differentiable:
            return GradKVCache(len(self.blocks))
        w = self.wte.weight
        D = w.size(1)
        return KVCache(
            len(self.blocks), batch, self.num_heads, self.max_len, D // self.num_heads, dtype=w.dtype, device=w.device
        )

    def forward(self, x: Tensor, cache: KVCache | GradKVCache | None = None, positions: Tensor | None = None) -> Tensor:
        """Embeddings (B, T, D) → final hidden states (B, T, D).

        Without a cache, x is the whole sequence from position 0. With one, x continues the
        sequence the cache holds, is appended to it, and attends to everything before it.
        `positions` (B, T) gives each example's position ids itself (sequences of several layouts
        in one batch); otherwise they are the sequence positions, shifted by `position_gap`.
        """
        T = x.size(1)
        start = 0 if cache is None else cache.length
        if start + T > self.max_len:
            raise ValueError(f"sequence of {start + T} positions exceeds the {self.max_len} it was built for")
        if positions is None:
            positions = torch.arange(start, start + T, device=x.device)  # (T,)
            at, size = self.position_gap
            if size:
                positions = positions + size * (positions >= at)
        x = x + self.wpe(positions)  # (B, T, D)
        if self.wae is not None:
            ids = self.places[start : start + T]  # (T,)
            if self.training:
                ids = torch.where(ids > 0, ids + self.place_offset, 0)
            x = x + self.wae(ids)  # (B, T, D)
        for block in self.blocks:
            x = block(x, cache)
        if cache is not None:
            cache.advance(T)
        return self.ln_f(x)


POSITIONS = ("learned", "abacus")


def abacus_places(
    position: str, digit_places: tuple[Sequence[int], Sequence[int]] | None, num_latent: int = 0
) -> list[int] | None:
    """The Backbone's place ids (max_len,) for `position` 'abacus', None for 'learned': the
    prompt's, 0 for each latent slot, then the answer's (answer digit i sits at Tp + L + i)."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    if position == "learned":
        return None
    if digit_places is None:
        raise ValueError("position 'abacus' needs the task's digit_places")
    prompt_places, answer_places = digit_places
    return [*prompt_places, *[0] * num_latent, *answer_places]


def greedy_decode(
    backbone: Backbone, prefix: Tensor, steps: int, use_cache: bool, cache: KVCache | GradKVCache | None = None
) -> tuple[Tensor, Tensor]:
    """Greedily write `steps` tokens after the embedded `prefix` (B, T0, D).

    Returns the tokens (B, steps) and the logits each was chosen from (B, steps, V). With a cache
    the prefix runs once and each new token runs alone; without, the whole growing sequence is
    re-run every step, which is slow but obviously right: the reference the cache is tested against.
    A `cache` passed in already holds the positions before `prefix` (latents computed one at a
    time, say); decoding continues it.
    """
    if cache is None and use_cache:
        cache = backbone.new_cache(prefix.size(0))
    x = prefix  # what the backbone reads next: (B, T0, D), then (B, 1, D) or the whole sequence
    tokens, logits = [], []
    for _ in range(steps):
        step_logits = backbone.logits(backbone(x, cache)[:, -1])  # (B, V)
        token = step_logits.argmax(dim=-1)  # (B,)
        tokens.append(token)
        logits.append(step_logits)
        emb = backbone.embed(token[:, None])  # (B, 1, D)
        x = emb if use_cache else torch.cat([x, emb], dim=1)
    return torch.stack(tokens, dim=1), torch.stack(logits, dim=1)


def check_shapes(prompt: Tensor, answer: Tensor | None, prompt_len: int, answer_len: int) -> None:
    """Refuse prompts/answers of the wrong length: a shifted layout would train on garbage silently."""
    if prompt.dim() != 2 or prompt.size(1) != prompt_len:
        raise ValueError(f"prompt must be (B, {prompt_len}), got {tuple(prompt.shape)}")
    if answer is not None and tuple(answer.shape) != (prompt.size(0), answer_len):
        raise ValueError(f"answer must be ({prompt.size(0)}, {answer_len}), got {tuple(answer.shape)}")


def _init_gpt2(module: nn.Module) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights and embeddings, zero biases (LayerNorm keeps 1/0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
