"""SimpleTransformer: the baseline. A decoder-only transformer reads `a*b=` and writes the product.

The sequence is prompt (Tp) + answer[:, :-1] (P - 1); the logits for answer digit i come from the
position just before it, Tp - 1 + i. Everything but the token layout lives in layers.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from latentrun.core.registry import MODELS
from latentrun.models.layers import Backbone, abacus_places, check_shapes, greedy_decode


@MODELS.register("simple_transformer", runtime_args=("vocab_size", "prompt_len", "answer_len", "digit_places"))
class SimpleTransformer(nn.Module):
    """Pre-LN GPT with tied embeddings; config parameters follow `$defs/model.simple_transformer`."""

    def __init__(
        self,
        *,
        d_model: int,
        num_layers: int,
        num_heads: int,
        mlp_ratio: int,
        dropout: float,
        vocab_size: int,
        prompt_len: int,
        answer_len: int,
        position: str = "learned",
        abacus_max_offset: int = 0,
        digit_places: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.prompt_len = prompt_len
        self.answer_len = answer_len
        self.backbone = Backbone(
            vocab_size=vocab_size,
            max_len=prompt_len + answer_len,
            d_model=d_model,
            num_layers=num_layers,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            places=abacus_places(position, digit_places),
            max_place_offset=abacus_max_offset,
        )

    def forward(self, prompt: Tensor, answer: Tensor) -> Tensor:
        """Teacher-forced logits (B, P, V): logits[:, i] predicts answer[:, i] from the prompt and
        answer[:, :i]; answer[:, -1] is never read."""
        check_shapes(prompt, answer, self.prompt_len, self.answer_len)
        self.backbone.draw_place_offset()
        x = self.backbone.embed(torch.cat([prompt, answer[:, :-1]], dim=1))  # (B, Tp+P-1, D)
        h = self.backbone(x)  # (B, Tp+P-1, D)
        return self.backbone.logits(h[:, self.prompt_len - 1 :])  # (B, P, V)

    @torch.no_grad()
    def generate(self, prompt: Tensor, use_cache: bool = True) -> Tensor:
        """Greedy decoding of the answer (B, P); `use_cache=False` re-runs the growing sequence each
        step and is the reference the cached path is tested against."""
        return self.generate_with_logits(prompt, use_cache)[0]

    @torch.no_grad()
    def generate_with_logits(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor]:
        """Greedy answer (B, P) and the logits each digit was chosen from (B, P, V), for evaluation
        code that wants confidences and for testing the cache step by step."""
        check_shapes(prompt, None, self.prompt_len, self.answer_len)
        return greedy_decode(self.backbone, self.backbone.embed(prompt), self.answer_len, use_cache)

    def num_parameters(self) -> int:
        """Trainable parameter count, the tied embedding counted once (position table included)."""
        return sum(p.numel() for p in self.parameters())
