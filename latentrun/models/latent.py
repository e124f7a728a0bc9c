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

from typing import Any, ClassVar, Literal, NamedTuple, overload

import torch
from torch import Tensor, nn

from latentrun.core.registry import MODELS
from latentrun.models.config import ModelConfig
from latentrun.models.layers import Backbone, GradKVCache, KVCache, abacus_places, check_shapes, greedy_decode

LATENT_MODES = ("pause", "recurrent")
DIGITS = 10  # classes of a probe digit


class Readings(NamedTuple):
    """A pass's logits and what the auxiliary heads read from the same pass (None: no such head)."""

    logits: Tensor  # (B, P, V)
    latents: Tensor | None  # (B, L, P, 10): the probe's digits of each latent, least significant first
    columns: Tensor | None  # (B, P): the column head's ĉ_k / 10 at the positions that write the answer


class LatentTransformer(nn.Module):
    """Pre-LN GPT with latent positions; config parameters follow `$defs/model.latent_transformer`."""

    # Modules built only because a loss or latent forcing trains them; generation never uses them,
    # so a warm start into a model without one may leave the source's copy behind.
    TRAINING_AIDS: ClassVar[tuple[str, ...]] = ("probe", "latent_teacher", "column_head")

    def __init__(
        self,
        config: ModelConfig,
        *,
        num_latent: int,
        latent_mode: str,
        chain: str,
        latent_probe: bool = False,
        latent_teacher: bool = False,
        column_head: bool = False,
    ) -> None:
        super().__init__()
        if num_latent < 0:
            raise ValueError(f"num_latent must be >= 0, got {num_latent}")
        if latent_mode not in LATENT_MODES:
            raise ValueError(f"latent_mode must be one of {', '.join(LATENT_MODES)}, got {latent_mode!r}")
        if latent_teacher and (latent_mode != "recurrent" or num_latent < 2):
            raise ValueError("latent_teacher needs latent_mode 'recurrent' and num_latent >= 2")
        self.vocab_size = config.vocab_size
        self.prompt_len = config.prompt_len
        self.answer_len = config.answer_len
        self.num_latent = num_latent
        self.latent_mode = latent_mode
        self.chain = chain  # the steps supervised latents hold, in order (task/supervision.py)
        self.backbone = Backbone(
            config,
            max_len=config.prompt_len + num_latent + config.answer_len,
            places=abacus_places(config.position, config.digit_places, num_latent),
        )
        # Every module below draws its initialisation from the global generator after the backbone,
        # in this order, so that a model without one keeps the weights it had before it existed.
        D, P = config.d_model, config.answer_len
        # With no latents nothing is created beyond the backbone: no empty `latents` parameter, so the
        # state_dict (and the initialisation) is exactly the plain transformer's.
        if latent_mode == "pause" and num_latent > 0:
            self.latents = nn.Parameter(torch.empty(num_latent, D))  # (L, D)
            nn.init.normal_(self.latents, mean=0.0, std=0.02)
        elif num_latent > 0:
            self.latent_proj = _small_linear(D, D)  # final hidden state → next latent's input
        self.probe = nn.Linear(D, P * DIGITS) if latent_probe and num_latent > 0 else None
        self.latent_teacher: nn.Embedding | None = None
        if latent_teacher:
            self.latent_teacher = nn.Embedding(P * DIGITS, D)  # row place·10 + digit
            nn.init.normal_(self.latent_teacher.weight, mean=0.0, std=0.02)
        # Bai et al.'s auxiliary head: ĉ_k / 10 read off the state that writes product digit k.
        self.column_head = _small_linear(D, 1) if column_head else None
        self.register_load_state_dict_pre_hook(_drop_empty_latents)

    # ---- the latent positions ---------------------------------------------------------------
    def _think(
        self,
        prompt: Tensor,
        cache: KVCache | GradKVCache | None,
        teacher: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """Run the prompt and the latents; returns (rest, outputs).

        `rest` is what the backbone has not read yet. In pause mode (or with no latents) that is the
        whole prefix (B, Tp+L, D) and nothing has run. In recurrent mode the loop below runs the
        latents: with a cache (which then holds every position before `rest`), `rest` is the input
        of the last latent (B, 1, D); without one, the whole prefix (B, Tp+L, D), each latent having
        re-run the growing sequence. `outputs` are the final hidden states of each pass, in order,
        (B, T_i, D); with a cache they cover positions 0.. up to `rest`, contiguously.

        `teacher` (B, F, D), F <= L - 1, is the teacher-forced input of latents 1..F, and `mask`
        (B, F) which (example, latent) takes it, None meaning every one. A latent whose input is known
        needs no pass before it: with `mask` None the forced inputs wait in `rest` for the next pass
        (with every latent forced: one pass with the answer); with a mask each latent runs alone.
        """
        prefix = self.backbone.embed(prompt)  # (B, Tp, D)
        if self.latent_mode == "pause" or self.num_latent == 0:
            latents = self.latents.unsqueeze(0).expand(prompt.size(0), -1, -1) if self.num_latent else prefix[:, :0]
            return torch.cat([prefix, latents], dim=1), []  # (B, Tp+L, D)
        num_forced = 0 if teacher is None else teacher.size(1)
        pending, outputs = prefix, []  # pending: what the next pass reads, (B, T, D)
        for k in range(self.num_latent):
            forced = 1 <= k <= num_forced
            if forced and mask is None:
                assert teacher is not None and cache is not None  # forcing trains, through a cache
                pending = torch.cat([pending, teacher[:, k - 1 : k]], dim=1)  # known without a pass
                continue
            h = self.backbone(pending, cache) if cache is not None else self.backbone(prefix)  # (B, T, D)
            outputs.append(h)
            pending = self.latent_proj(h[:, -1:])  # (B, 1, D): latent k's free-running input
            if forced:
                assert teacher is not None and mask is not None
                pending = torch.where(mask[:, k - 1, None, None], teacher[:, k - 1 : k], pending)
            if cache is None:
                prefix = torch.cat([prefix, pending], dim=1)  # (B, Tp+k+1, D)
        return (pending if cache is not None else prefix), outputs

    def teacher_inputs(self, digits: Tensor) -> Tensor:
        """Teacher-forced latent inputs (B, F, D) from running-sum digits (B, F, P), least
        significant first: the sum over places of that place's embedding of its digit."""
        assert self.latent_teacher is not None, "teacher_inputs needs a model built with latent_teacher"
        places = torch.arange(digits.size(-1), device=digits.device) * DIGITS  # (P,)
        return self.latent_teacher(digits + places).sum(dim=-2)  # (B, F, P, D) -> (B, F, D)

    # ---- training and decoding ----------------------------------------------------------------
    @overload
    def forward(
        self,
        prompt: Tensor,
        answer: Tensor,
        *,
        heads: Literal[False] = False,
        forced_latents: Tensor | None = None,
        forced_mask: Tensor | None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self,
        prompt: Tensor,
        answer: Tensor,
        *,
        heads: Literal[True],
        forced_latents: Tensor | None = None,
        forced_mask: Tensor | None = None,
    ) -> Readings: ...

    def forward(
        self,
        prompt: Tensor,
        answer: Tensor,
        *,
        heads: bool = False,
        forced_latents: Tensor | None = None,
        forced_mask: Tensor | None = None,
    ) -> Tensor | Readings:
        """Teacher-forced logits (B, P, V): logits[:, i] predicts answer[:, i] from the prompt, the
        latents and answer[:, :i]; answer[:, -1] is never read.

        `heads` returns the `Readings` of the same pass instead: the logits, the probe's reading of
        every latent and the column head's, each where the model has that head. They come from this
        one call because a training pass under DDP must go through `forward` to average gradients.
        `forced_latents` (B, F, P), the digits of the running sums a × (b mod 10^k) for k = 1..F,
        teacher-forces latents 1..min(F, L-1) (the model needs `latent_teacher`); `forced_mask`
        (B, F) bool picks which (example, latent) is forced, None meaning every one.
        """
        check_shapes(prompt, answer, self.prompt_len, self.answer_len)
        self.backbone.draw_place_offset()
        B, L, P = prompt.size(0), self.num_latent, self.answer_len
        answer_in = self.backbone.embed(answer[:, :-1])  # (B, P-1, D)
        teacher = None
        if forced_latents is not None:
            if self.latent_teacher is None:
                raise ValueError("forced_latents needs a model built with latent_teacher (train.latent_forcing)")
            teacher = self.teacher_inputs(forced_latents[:, : self.num_latent - 1])  # (B, F, D)
            forced_mask = None if forced_mask is None else forced_mask[:, : teacher.size(1)]  # (B, F)
        if self.latent_mode == "pause" or L == 0:
            h = self.backbone(torch.cat([self._think(prompt, None)[0], answer_in], dim=1))  # (B, Tp+L+P-1, D)
            states = h[:, self.prompt_len : self.prompt_len + L]  # (B, L, D)
        else:
            # A gradient-carrying cache while training; the preallocated one under no_grad.
            cache = self.backbone.new_cache(B, differentiable=torch.is_grad_enabled())
            rest, outputs = self._think(prompt, cache, teacher, forced_mask)  # cache: every position before rest
            h = self.backbone(torch.cat([rest, answer_in], dim=1), cache)  # (B, T, D), T >= P
            # The passes after the prompt's, then this one, cover the positions from latent 0's on.
            earlier = outputs[1:]  # (B, T_i, D) each
            states = torch.cat([*earlier, h[:, : L - sum(o.size(1) for o in earlier)]], dim=1)  # (B, L, D)
        logits = self.backbone.logits(h[:, -P:])  # (B, P, V)
        if not heads:
            return logits
        latents = None if self.probe is None else self.probe(states).view(B, L, P, DIGITS)  # (B, L, P, 10)
        columns = None if self.column_head is None else self.column_head(h[:, -P:]).squeeze(-1)  # (B, P)
        return Readings(logits, latents, columns)

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


def _small_linear(fan_in: int, fan_out: int) -> nn.Linear:
    """A linear map drawn at GPT-2 scale, N(0, 0.02) weights and zero bias, rather than nn.Linear's default."""
    linear = nn.Linear(fan_in, fan_out)
    nn.init.normal_(linear.weight, mean=0.0, std=0.02)
    nn.init.zeros_(linear.bias)
    return linear


def _drop_empty_latents(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Checkpoints of a pause-mode model with 0 latents, written before such a model stopped owning
    a (0, D) `latents` parameter, carry that empty tensor; it holds nothing, so it is dropped."""
    key = prefix + "latents"
    if key in state_dict and state_dict[key].numel() == 0 and not hasattr(module, "latents"):
        del state_dict[key]


@MODELS.register("latent_transformer")
def latent_transformer(**kwargs: Any) -> LatentTransformer:
    """`$defs/model.latent_transformer`, from the section's keys and the task's sizes, flat as the
    registry passes them: the shared ones become the `ModelConfig`, the rest pass straight through."""
    config, own = ModelConfig.split(kwargs)
    return LatentTransformer(config, **own)


@MODELS.register("simple_transformer")
def simple_transformer(**kwargs: Any) -> LatentTransformer:
    """The baseline, `$defs/model.simple_transformer`: the latent transformer with no latent positions.

    Its checkpoints (written by the former SimpleTransformer class, backbone.* only) load unchanged.
    """
    return latent_transformer(num_latent=0, latent_mode="pause", chain="running_sums", **kwargs)
