"""LatentTransformer: a decoder-only transformer that reads `a*b=`, runs `num_latent` latent positions
and writes the product; with no latents it is the baseline, registered as `simple_transformer`.

The sequence is prompt (Tp) + L latents + answer[:, :-1] (P - 1). A latent position has no token;
`latent_mode` says what its input is:

- `pause`: a learned vector per slot (plus its position embedding). All slots run in the same
  forward pass as the prompt, so they add width (scratch positions) but no depth.
- `recurrent` (continuous thought, Coconut): the input of latent k is a learned projection of the
  final hidden state at the position before it, so latent 0 reads the state at `=` and each latent
  adds one full pass of depth. Latents run one position at a time through the KV cache (a latent
  costs one position, not a re-run of the sequence), and gradients flow back through the chain.

The logits for answer digit i come from position Tp + L - 1 + i. With L = 0 either mode is exactly
the plain transformer (the backbone's parameters alone, initialised as the backbone alone is), so
`simple_transformer` is this class with its latent arguments fixed, not a second class.

With `latent_probe`, a linear probe reads each latent's final hidden state as the digits of a
number of `answer_len` digits (least significant first): step supervision trains latent k to hold
the running sum of long multiplication after k digits of b (see latentrun/task/supervision.py).

With `latent_teacher` (recurrent mode), training may *teacher-force* the latents: instead of the
projection of latent k-1's state, latent k (k >= 1) is fed an embedding of the digits its
predecessor is supervised to hold, the true running sum a × (b mod 10^k). The embedding is a sum of
one learned vector per (place, digit), a linear code of the digits' one-hot encoding: the same
family the linear probe reads out of a state and the linear latent_proj writes into an input, so a
free-running input that carries the right running sum can sit where the teacher-forced one did.
When every latent is forced, nothing in the chain waits for a pass before it: the prompt runs
once, then all latents and the answer run in one parallel pass (two backbone calls instead of L+1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from latentrun.core.registry import MODELS
from latentrun.models.layers import Backbone, GradKVCache, KVCache, abacus_places, check_shapes, greedy_decode

LATENT_MODES = ("pause", "recurrent")
DIGITS = 10  # classes of a probe digit


@MODELS.register("latent_transformer")
class LatentTransformer(nn.Module):
    """Pre-LN GPT with latent positions; config parameters follow `$defs/model.latent_transformer`."""

    def __init__(
        self,
        *,
        d_model: int,
        num_layers: int,
        num_heads: int,
        mlp_ratio: int,
        dropout: float,
        num_latent: int,
        latent_mode: str,
        vocab_size: int,
        prompt_len: int,
        answer_len: int,
        latent_probe: bool,
        position: str,
        abacus_max_offset: int,
        latent_teacher: bool = False,
        column_head: bool = False,
        digit_places: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if num_latent < 0:
            raise ValueError(f"num_latent must be >= 0, got {num_latent}")
        if latent_mode not in LATENT_MODES:
            raise ValueError(f"latent_mode must be one of {', '.join(LATENT_MODES)}, got {latent_mode!r}")
        self.vocab_size = vocab_size
        self.prompt_len = prompt_len
        self.answer_len = answer_len
        self.num_latent = num_latent
        self.latent_mode = latent_mode
        self.backbone = Backbone(
            vocab_size=vocab_size,
            max_len=prompt_len + num_latent + answer_len,
            d_model=d_model,
            num_layers=num_layers,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            places=abacus_places(position, digit_places, num_latent),
            max_place_offset=abacus_max_offset,
        )
        # With no latents nothing is created beyond the backbone: no empty `latents` parameter, so the
        # state_dict (and the initialisation) is exactly the plain transformer's.
        if latent_mode == "pause" and num_latent > 0:
            self.latents = nn.Parameter(torch.empty(num_latent, d_model))  # (L, D)
            nn.init.normal_(self.latents, mean=0.0, std=0.02)
        elif num_latent > 0:
            self.latent_proj = nn.Linear(d_model, d_model)  # final hidden state → next latent's input
            nn.init.normal_(self.latent_proj.weight, mean=0.0, std=0.02)
            nn.init.zeros_(self.latent_proj.bias)
        self.probe = nn.Linear(d_model, answer_len * DIGITS) if latent_probe and num_latent > 0 else None
        self.latent_teacher: nn.Embedding | None = None
        if latent_teacher:  # built last, so every other parameter keeps its initialisation
            if latent_mode != "recurrent" or num_latent < 2:
                raise ValueError("latent_teacher needs latent_mode 'recurrent' and num_latent >= 2")
            self.latent_teacher = nn.Embedding(answer_len * DIGITS, d_model)  # row place·10 + digit
            nn.init.normal_(self.latent_teacher.weight, mean=0.0, std=0.02)
        # Bai et al.'s auxiliary head: ĉ_k / 10 read off the state that writes product digit k.
        self.column_head: nn.Linear | None = None
        if column_head:  # built after everything else, which keeps its initialisation
            self.column_head = nn.Linear(d_model, 1)
            nn.init.normal_(self.column_head.weight, mean=0.0, std=0.02)
            nn.init.zeros_(self.column_head.bias)
        self.register_load_state_dict_pre_hook(_drop_empty_latents)

    # ---- the latent positions ---------------------------------------------------------------
    def _think(self, prompt: Tensor, cache: KVCache | GradKVCache | None) -> tuple[Tensor, list[Tensor]]:
        """Run the prompt and the latents; returns (rest, states).

        `rest` is what the backbone has not read yet: with a cache (which now holds every position
        before it) the input of the last latent (B, 1, D) in recurrent mode, or the whole prefix
        (B, Tp+L, D) without one or in pause mode. `states` are the final hidden states (B, 1, D)
        of the latents already run, 0..L-2 in recurrent mode and none in pause mode.
        """
        prefix = self.backbone.embed(prompt)  # (B, Tp, D)
        if self.latent_mode == "pause" or self.num_latent == 0:
            latents = self.latents.unsqueeze(0).expand(prompt.size(0), -1, -1) if self.num_latent else prefix[:, :0]
            return torch.cat([prefix, latents], dim=1), []  # (B, Tp+L, D)
        pending, states = prefix, []
        for k in range(self.num_latent):
            h = self.backbone(pending, cache) if cache is not None else self.backbone(prefix)
            last = h[:, -1:]  # (B, 1, D): the position before latent k
            if k > 0:
                states.append(last)
            pending = self.latent_proj(last)  # (B, 1, D): latent k's input
            prefix = torch.cat([prefix, pending], dim=1)  # (B, Tp+k+1, D)
        return (pending if cache is not None else prefix), states

    def teacher_inputs(self, digits: Tensor) -> Tensor:
        """Teacher-forced latent inputs (B, F, D) from running-sum digits (B, F, P), least
        significant first: the sum over places of that place's embedding of its digit."""
        assert self.latent_teacher is not None, "teacher_inputs needs a model built with latent_teacher"
        places = torch.arange(digits.size(-1), device=digits.device) * DIGITS  # (P,)
        return self.latent_teacher(digits + places).sum(dim=-2)  # (B, F, P, D) -> (B, F, D)

    def _think_forced(
        self, prompt: Tensor, cache: KVCache | GradKVCache, forced: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        """The recurrent chain with latents 1..F fed their true running sums (F = min(forced.size(1),
        L - 1)); returns (pending, outputs). `forced` (B, >=F, P) holds the digits, `mask` (B, >=F)
        says which (example, latent) is forced, None meaning all. A latent whose input is known
        needs no pass before it, so with `mask` None the prompt runs, then every latent waits in
        `pending` (B, L, D) for one pass with the answer; with a mask each latent runs alone.
        `outputs` are the final hidden states of what ran, in order, (B, T_i, D) each."""
        num_forced = min(forced.size(1), self.num_latent - 1)
        teacher = self.teacher_inputs(forced[:, :num_forced])  # (B, F, D)
        pending, outputs = self.backbone.embed(prompt), []  # (B, Tp, D)
        for k in range(self.num_latent):
            if 1 <= k <= num_forced and mask is None:
                pending = torch.cat([pending, teacher[:, k - 1 : k]], dim=1)  # known without a pass
                continue
            h = self.backbone(pending, cache)  # (B, T, D)
            outputs.append(h)
            pending = self.latent_proj(h[:, -1:])  # (B, 1, D): latent k's free-running input
            if 1 <= k <= num_forced and mask is not None:
                pending = torch.where(mask[:, k - 1, None, None], teacher[:, k - 1 : k], pending)
        return pending, outputs

    # ---- training and decoding ----------------------------------------------------------------
    def forward(
        self,
        prompt: Tensor,
        answer: Tensor,
        with_probe: bool = False,
        forced_latents: Tensor | None = None,
        forced_mask: Tensor | None = None,
        with_columns: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        """Teacher-forced logits (B, P, V): logits[:, i] predicts answer[:, i] from the prompt, the
        latents and answer[:, :i]; answer[:, -1] is never read.

        `with_probe` also returns the probe's reading of every latent, (B, L, P, 10) logits over the
        digits of a number, least significant first (the model needs `latent_probe`).
        `with_columns` also returns (after the probe's, if asked) the column head's reading (B, P) at
        the P positions that write the answer (the model needs `column_head`).
        `forced_latents` (B, F, P), the digits of the running sums a × (b mod 10^k) for k = 1..F,
        teacher-forces latents 1..min(F, L-1) (the model needs `latent_teacher`); `forced_mask`
        (B, F) bool picks which (example, latent) is forced, None meaning every one.
        """
        check_shapes(prompt, answer, self.prompt_len, self.answer_len)
        self.backbone.draw_place_offset()
        B, Tp, L, P = prompt.size(0), self.prompt_len, self.num_latent, self.answer_len
        answer_in = self.backbone.embed(answer[:, :-1])  # (B, P-1, D)
        if forced_latents is not None:
            if self.latent_teacher is None:
                raise ValueError("forced_latents needs a model built with latent_teacher (train.latent_forcing)")
            cache = self.backbone.new_cache(B, differentiable=torch.is_grad_enabled())
            pending, outputs = self._think_forced(prompt, cache, forced_latents, forced_mask)
            outputs.append(self.backbone(torch.cat([pending, answer_in], dim=1), cache))
            h = torch.cat(outputs, dim=1)  # (B, Tp+L+P-1, D)
            states = h[:, Tp : Tp + L]  # (B, L, D)
        elif self.latent_mode == "pause" or L == 0:
            h = self.backbone(torch.cat([self._think(prompt, None)[0], answer_in], dim=1))  # (B, Tp+L+P-1, D)
            states = h[:, Tp : Tp + L]  # (B, L, D)
        else:
            # A gradient-carrying cache while training; the preallocated one under no_grad.
            cache = self.backbone.new_cache(B, differentiable=torch.is_grad_enabled())
            pending, earlier = self._think(prompt, cache)  # pending (B, 1, D); cache holds Tp+L-1 positions
            h = self.backbone(torch.cat([pending, answer_in], dim=1), cache)  # (B, P, D)
            states = torch.cat([*earlier, h[:, :1]], dim=1)  # (B, L, D)
        logits = self.backbone.logits(h[:, -P:])  # (B, P, V)
        outputs = [logits]
        if with_probe:
            if self.probe is None:
                raise ValueError(
                    "with_probe needs a model built with latent_probe (loss.latent_supervision_weight > 0)"
                )
            outputs.append(self.probe(states).view(B, L, P, DIGITS))  # (B, L, P, 10)
        if with_columns:
            if self.column_head is None:
                raise ValueError("with_columns needs a model built with column_head (loss.column_sum_weight > 0)")
            outputs.append(self.column_head(h[:, -P:]).squeeze(-1))  # (B, P)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @torch.no_grad()
    def generate(self, prompt: Tensor, use_cache: bool = True) -> Tensor:
        """Greedy decoding of the answer (B, P); with the cache, the prompt is prefilled in one pass
        and each recurrent latent runs as one position. `use_cache=False` re-runs the growing
        sequence each step (the reference)."""
        return self.generate_with_logits(prompt, use_cache)[0]

    @torch.no_grad()
    def generate_with_logits(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor]:
        """Greedy answer (B, P) and the logits each digit was chosen from (B, P, V)."""
        check_shapes(prompt, None, self.prompt_len, self.answer_len)
        cache = self.backbone.new_cache(prompt.size(0)) if use_cache else None
        rest, _ = self._think(prompt, cache)
        return greedy_decode(self.backbone, rest, self.answer_len, use_cache, cache)

    def num_parameters(self) -> int:
        """Trainable parameter count, the tied embedding counted once (latents, positions, latent
        projection and probe included)."""
        return sum(p.numel() for p in self.parameters())


def _drop_empty_latents(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Checkpoints of a pause-mode model with 0 latents, written before such a model stopped owning
    a (0, D) `latents` parameter, carry that empty tensor; it holds nothing, so it is dropped."""
    key = prefix + "latents"
    if key in state_dict and state_dict[key].numel() == 0 and not hasattr(module, "latents"):
        del state_dict[key]


@MODELS.register("simple_transformer")
def simple_transformer(**kwargs: Any) -> LatentTransformer:
    """The baseline, `$defs/model.simple_transformer`: the latent transformer with no latent positions.

    Its checkpoints (written by the former SimpleTransformer class, backbone.* only) load unchanged.
    """
    return LatentTransformer(num_latent=0, latent_mode="pause", **kwargs)
