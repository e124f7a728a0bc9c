"""ChainTransformer: writes a chain of intermediate results, or thinks in their place, before the product.

The sequence is prompt (Tp) + T continuous thoughts + the written chain from token `removed` on
(Cw = C - removed tokens) + answer[:, :-1] (P - 1). Its layout (T, removed) is what the curricula of
the literature move along:

- explicit chain of thought: (0, 0), every written step is a target, decoded greedily;
- Coconut (Hao et al. 2024): stage k replaces the first k written steps by continuous thoughts,
  the input of thought t being the final (normed) hidden state before it, as the paper feeds it
  back (`thought_feedback: hidden`), or a learned projection of it (`projection`, as in
  `latent_mode: recurrent`), so each thought adds one pass of depth and costs no token;
- stepwise internalization (Deng et al. 2024): (0, m), the first m chain tokens removed, until
  m = C and the model answers directly. With removal smoothing each training example removes
  m + o_i tokens (`extra_removed`): the sequences then differ in length and are right-padded,
  which causal attention keeps from touching anything before the padding.

Removed tokens give up their positions to what follows them by default (as Deng et al.'s default);
with `keep_positions` (their `--keep_position`) every token after the thoughts keeps the position
id it had with the whole chain written, so removing a token moves nothing a learned absolute
position embedding has learned to find where it was.

The layout is a buffer, so a checkpoint holds the layout its weights were trained and evaluated
with, and `predict`/`eval` read a run back as it was. The model knows nothing of schedules: the
training loop sets the layout before each step (latentrun/train/curriculum.py).

Logits for written token i come from position Tp + T - 1 + i, and for answer digit j from position
Tp + T + Cw - 1 + j. Which written tokens a task asks for is the task's business (task/chains.py);
the model only needs their count C, and, for Abacus positions (`position: abacus`), each chain
token's place within its number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, overload

import torch
from torch import Tensor, nn

from latentrun.core.registry import MODELS
from latentrun.models.config import ModelConfig
from latentrun.models.layers import Backbone, GradKVCache, KVCache, abacus_places, check_shapes, greedy_decode

THOUGHT_FEEDBACK = ("hidden", "projection")


class ChainTransformer(nn.Module):
    """Pre-LN GPT that writes `chain_len` chain tokens (or fewer, or thinks instead) before the
    product; config parameters follow `$defs/model.chain_transformer`."""

    layout: Tensor  # (2,) int64 buffer: (thoughts, removed)
    TRAINING_AIDS: ClassVar[tuple[str, ...]] = ()  # every module of a chain model can generate

    def __init__(
        self,
        config: ModelConfig,
        *,
        chain: str,
        chain_len: int,
        continuous_thoughts: bool,
        thought_feedback: str,
        keep_positions: bool,
        chain_places: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if thought_feedback not in THOUGHT_FEEDBACK:
            raise ValueError(f"thought_feedback must be one of {', '.join(THOUGHT_FEEDBACK)}, got {thought_feedback!r}")
        self.vocab_size = config.vocab_size
        self.prompt_len = config.prompt_len
        self.answer_len = config.answer_len
        self.chain = chain  # which numbers the chain writes (task/chains.py's names); chain_len, places: their sizes
        self.chain_len = chain_len
        # Abacus place ids of the prompt, the chain (one per chain token, 0 where a token marks no
        # place) and the answer; the Backbone's table follows the layout (see _sync_places).
        self._places: tuple[list[int], list[int], list[int]] | None = None
        full_places = abacus_places(config.position, config.digit_places)  # prompt + answer, or None for learned
        if full_places is not None:
            assert config.digit_places is not None  # abacus_places refuses abacus without them
            if chain_places is None or len(chain_places) != chain_len:
                raise ValueError(f"position 'abacus' needs chain_places, one per chain token ({chain_len})")
            prompt_places, answer_places = (list(p) for p in config.digit_places)
            self._places = (prompt_places, list(chain_places), answer_places)
            full_places = [*prompt_places, *chain_places, *answer_places]
        # Thoughts only ever replace written tokens one for one or better, so the full chain bounds the length.
        self.backbone = Backbone(config, max_len=config.prompt_len + chain_len + config.answer_len)
        self._places_layout = (0, 0)  # the layout the Backbone's place ids were laid out for
        self.continuous_thoughts = continuous_thoughts
        self.keep_positions = keep_positions
        self.thought_proj: nn.Linear | None = None
        if continuous_thoughts and thought_feedback == "projection":
            self.thought_proj = nn.Linear(config.d_model, config.d_model)  # final hidden state → next thought's input
            nn.init.normal_(self.thought_proj.weight, mean=0.0, std=0.02)
            nn.init.zeros_(self.thought_proj.bias)
        self.register_buffer("layout", torch.zeros(2, dtype=torch.int64))  # (thoughts, removed)
        if full_places is not None:  # last, so every other parameter keeps its initialisation
            self.backbone.add_places(full_places, config.abacus_max_offset)

    # ---- the layout ---------------------------------------------------------------------------
    def set_layout(self, thoughts: int, removed: int) -> None:
        """Think `thoughts` continuous thoughts, then write the chain from token `removed` on."""
        if not 0 <= removed <= self.chain_len:
            raise ValueError(f"removed must be in 0..{self.chain_len}, got {removed}")
        if not 0 <= thoughts <= removed:
            raise ValueError(f"thoughts must be in 0..removed ({removed}): they take the removed tokens' places")
        if thoughts and not self.continuous_thoughts:
            raise ValueError("continuous thoughts need a model built with continuous_thoughts")
        self.layout.copy_(torch.tensor([thoughts, removed]))

    def _sync_places(self) -> None:
        """Lay the Backbone's place ids out for the current layout: the prompt's, 0 for each thought,
        the written chain's, the answer's, then 0 for the positions this layout leaves unused. The
        ids follow the layout buffer (a loaded checkpoint's too), so they are a pure function of it."""
        layout = (int(self.layout[0]), int(self.layout[1]))
        thoughts, removed = layout
        self.backbone.position_gap = (self.prompt_len + thoughts, removed - thoughts) if self.keep_positions else (0, 0)
        if self._places is None or layout == self._places_layout:
            return
        prompt_places, chain_places, answer_places = self._places
        places = [*prompt_places, *[0] * thoughts, *chain_places[removed:], *answer_places]
        places += [0] * (self.backbone.max_len - len(places))
        self.backbone.places.copy_(torch.tensor(places, dtype=torch.long))
        self._places_layout = layout

    @property
    def thoughts(self) -> int:
        return int(self.layout[0])

    @property
    def written_len(self) -> int:
        """Chain tokens the model writes before the product under the current layout."""
        return self.chain_len - int(self.layout[1])

    @property
    def generated_tokens(self) -> int:
        """Tokens greedy decoding writes per problem: the written chain plus the product digits."""
        return self.written_len + self.answer_len

    # ---- forward and decoding ---------------------------------------------------------------
    def _think(self, prompt: Tensor, cache: KVCache | GradKVCache | None) -> Tensor:
        """Run the prompt and the thoughts; returns what the backbone has not read yet.

        With a cache (which then holds the prompt and every thought but the last) that is the last
        thought's input (B, 1, D), or the prompt (B, Tp, D) when there are no thoughts; without one
        it is the whole prefix (B, Tp+T, D), each thought having re-run the growing sequence.
        """
        self._sync_places()
        prefix = self.backbone.embed(prompt)  # (B, Tp, D)
        pending = prefix
        for _ in range(self.thoughts):
            h = self.backbone(pending, cache) if cache is not None else self.backbone(prefix)
            pending = self.thought_input(h[:, -1:])  # (B, 1, D): the next thought's input
            prefix = torch.cat([prefix, pending], dim=1)  # (B, Tp+t+1, D)
        return pending if cache is not None else prefix

    def thought_input(self, hidden: Tensor) -> Tensor:
        """The input embedding (B, 1, D) of the next continuous thought, from the final hidden
        state (B, 1, D) before it: itself (Coconut's feedback), or its learned projection."""
        return hidden if self.thought_proj is None else self.thought_proj(hidden)

    @overload
    def forward(self, prompt: Tensor, answer: Tensor, chain: None = None, extra_removed: None = None) -> Tensor: ...

    @overload
    def forward(
        self, prompt: Tensor, answer: Tensor, chain: Tensor, extra_removed: Tensor | None = None
    ) -> tuple[Tensor, Tensor]: ...

    def forward(
        self, prompt: Tensor, answer: Tensor, chain: Tensor | None = None, extra_removed: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Teacher-forced logits.

        With the full chain (B, C), as in training: (answer logits (B, P, V), logits of the written
        chain tokens (B, Cw, V)), the written tokens being chain[:, C - Cw:]. Without one, as in
        evaluation: answer logits (B, P, V) after the chain the model writes itself (greedily,
        without gradients), so the loss compares with models that write nothing.
        """
        check_shapes(prompt, answer, self.prompt_len, self.answer_len)
        self.backbone.draw_place_offset()  # one shift for the whole pass, thoughts and chain included
        if extra_removed is not None:
            if chain is None:
                raise ValueError("extra_removed is for training: it needs the chain")
            return self._forward_ragged(prompt, answer, chain, extra_removed)
        if chain is None:
            written = self.write(prompt)[0]  # (B, Cw)
        else:
            if tuple(chain.shape) != (prompt.size(0), self.chain_len):
                raise ValueError(f"chain must be ({prompt.size(0)}, {self.chain_len}), got {tuple(chain.shape)}")
            written = chain[:, self.chain_len - self.written_len :]  # (B, Cw)
        Cw, P = written.size(1), self.answer_len
        # A gradient-carrying cache while training; the preallocated one under no_grad.
        cache = self.backbone.new_cache(prompt.size(0), differentiable=torch.is_grad_enabled())
        pending = self._think(prompt, cache)  # (B, 1, D) or (B, Tp, D)
        rest = self.backbone.embed(torch.cat([written, answer[:, :-1]], dim=1))  # (B, Cw+P-1, D)
        h = self.backbone(torch.cat([pending, rest], dim=1), cache)[:, -(Cw + P) :]  # (B, Cw+P, D)
        logits = self.backbone.logits(h)  # (B, Cw+P, V)
        answer_logits = logits[:, Cw:]  # (B, P, V)
        return answer_logits if chain is None else (answer_logits, logits[:, :Cw])

    def _forward_ragged(
        self, prompt: Tensor, answer: Tensor, chain: Tensor, extra_removed: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits when example i removes `removed + extra_removed[i]` chain tokens:
        (answer logits (B, P, V), chain logits (B, Cw, V)), Cw = C - removed the longest written
        chain; chain logit t of example i predicts its written token t for t < C - its removal,
        and is padding after that (the loss masks it)."""
        if self.thoughts or self._places is not None:
            raise ValueError("per-example removal is for internalization with learned positions only")
        if tuple(chain.shape) != (prompt.size(0), self.chain_len):
            raise ValueError(f"chain must be ({prompt.size(0)}, {self.chain_len}), got {tuple(chain.shape)}")
        C, P, Tp = self.chain_len, self.answer_len, self.prompt_len
        removed = int(self.layout[1]) + extra_removed  # (B,)
        longest = C - int(self.layout[1]) + P - 1  # the longest sequence after the prompt
        written_then_answer = torch.cat([chain, answer[:, :-1]], dim=1)  # (B, C+P-1)
        index = removed[:, None] + torch.arange(longest, device=prompt.device)  # (B, L)
        rest = written_then_answer.gather(1, index.clamp(max=C + P - 2))  # (B, L); past the end: padding
        x = torch.cat([self.backbone.embed(prompt), self.backbone.embed(rest)], dim=1)  # (B, Tp+L, D)
        steps = torch.arange(Tp + longest, device=prompt.device).expand(prompt.size(0), -1)  # (B, Tp+L)
        # keep_positions: token t after the prompt sits where it would with the whole chain written.
        shift = removed[:, None] * (steps >= Tp) if self.keep_positions else torch.zeros_like(steps)
        positions = (steps + shift).clamp(max=self.backbone.max_len - 1)  # padding may run past the end
        logits = self.backbone.logits(self.backbone(x, positions=positions))  # (B, Tp+L, V)
        # Answer digit j of example i is rest token (C - removed_i) + j, predicted one position earlier.
        answer_at = Tp - 1 + (C - removed)[:, None] + torch.arange(P, device=prompt.device)  # (B, P)
        answer_logits = logits.gather(1, answer_at[..., None].expand(-1, -1, logits.size(-1)))  # (B, P, V)
        return answer_logits, logits[:, Tp - 1 : Tp - 1 + C - int(self.layout[1])]

    @torch.no_grad()
    def write(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Greedy decoding of everything after the thoughts: (written chain (B, Cw), answer (B, P),
        answer logits (B, P, V)). `use_cache=False` re-runs the growing sequence (the reference)."""
        check_shapes(prompt, None, self.prompt_len, self.answer_len)
        cache = self.backbone.new_cache(prompt.size(0)) if use_cache else None
        pending = self._think(prompt, cache)
        Cw = self.written_len
        tokens, logits = greedy_decode(self.backbone, pending, Cw + self.answer_len, use_cache, cache)
        return tokens[:, :Cw], tokens[:, Cw:], logits[:, Cw:]

    @torch.no_grad()
    def generate(self, prompt: Tensor, use_cache: bool = True) -> Tensor:
        """Greedy answer (B, P), the written chain decoded first and dropped: exact match counts the product only."""
        return self.write(prompt, use_cache)[1]

    @torch.no_grad()
    def generate_with_logits(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor]:
        """Greedy answer (B, P) and the logits each digit was chosen from (B, P, V)."""
        return self.write(prompt, use_cache)[1:]

    def num_parameters(self) -> int:
        """Trainable parameter count, the tied embedding counted once (thought projection included)."""
        return sum(p.numel() for p in self.parameters())


@MODELS.register("chain_transformer")
def chain_transformer(**kwargs: Any) -> ChainTransformer:
    """`$defs/model.chain_transformer`, from the section's keys and the task's sizes, flat as the
    registry passes them: the shared ones become the `ModelConfig`, the rest pass straight through."""
    config, own = ModelConfig.split(kwargs)
    return ChainTransformer(config, **own)
