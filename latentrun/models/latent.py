"""LatentTransformer: the simple transformer plus `num_latent` learned slots between `=` and the product.

The sequence is prompt (Tp) + L latents + answer[:, :-1] (P - 1). A latent slot has no token: its
input is a learned vector (plus its position embedding), and the model may use the slots' hidden
states as scratch space for intermediate computation before it writes the first product digit.
The logits for answer digit i come from position Tp + L - 1 + i. With L = 0 this is exactly the
simple model (same parameters, same initialisation for the same seed).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from latentrun.models.layers import Backbone, check_shapes, greedy_decode
from latentrun.registry import MODELS


@MODELS.register("latent_transformer", runtime_args=("vocab_size", "prompt_len", "answer_len"))
class LatentTransformer(nn.Module):
    """Pre-LN GPT with learned latent slots; config parameters follow `$defs/model.latent_transformer`."""

    def __init__(self, *, d_model: int, num_layers: int, num_heads: int, mlp_ratio: int, dropout: float,
                 num_latent: int, vocab_size: int, prompt_len: int, answer_len: int) -> None:
        super().__init__()
        if num_latent < 0:
            raise ValueError(f"num_latent must be >= 0, got {num_latent}")
        self.vocab_size = vocab_size
        self.prompt_len = prompt_len
        self.answer_len = answer_len
        self.num_latent = num_latent
        self.backbone = Backbone(vocab_size=vocab_size, max_len=prompt_len + num_latent + answer_len,
                                 d_model=d_model, num_layers=num_layers, num_heads=num_heads,
                                 mlp_ratio=mlp_ratio, dropout=dropout)
        self.latents = nn.Parameter(torch.empty(num_latent, d_model))  # (L, D)
        nn.init.normal_(self.latents, mean=0.0, std=0.02)

    def prefix(self, prompt: Tensor) -> Tensor:
        """Input embeddings of everything the prompt alone determines, prompt then latents (B, Tp+L, D).

        Answer decoding continues from here, in training and in generation alike.
        """
        B = prompt.size(0)
        latents = self.latents.unsqueeze(0).expand(B, -1, -1)  # (B, L, D)
        return torch.cat([self.backbone.embed(prompt), latents], dim=1)  # (B, Tp+L, D)

    def latent_states(self, prompt: Tensor) -> Tensor:
        """Final hidden states at the latent positions (B, L, D): what the slots computed.

        Causal attention means these depend on the prompt only, so running the prefix alone gives
        the same values as slicing them out of a teacher-forced forward pass.
        """
        check_shapes(prompt, None, self.prompt_len, self.answer_len)
        return self.backbone(self.prefix(prompt))[:, self.prompt_len:]  # (B, L, D)

    def forward(self, prompt: Tensor, answer: Tensor) -> Tensor:
        """Teacher-forced logits (B, P, V): logits[:, i] predicts answer[:, i] from the prompt, the
        latents and answer[:, :i]; answer[:, -1] is never read."""
        check_shapes(prompt, answer, self.prompt_len, self.answer_len)
        x = torch.cat([self.prefix(prompt), self.backbone.embed(answer[:, :-1])], dim=1)  # (B, Tp+L+P-1, D)
        h = self.backbone(x)  # (B, Tp+L+P-1, D)
        return self.backbone.logits(h[:, self.prompt_len + self.num_latent - 1:])  # (B, P, V)

    @torch.no_grad()
    def generate(self, prompt: Tensor, use_cache: bool = True) -> Tensor:
        """Greedy decoding of the answer (B, P); with the cache, prompt and latents are prefilled in
        one pass. `use_cache=False` re-runs the growing sequence each step (the reference)."""
        return self.generate_with_logits(prompt, use_cache)[0]

    @torch.no_grad()
    def generate_with_logits(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor]:
        """Greedy answer (B, P) and the logits each digit was chosen from (B, P, V)."""
        check_shapes(prompt, None, self.prompt_len, self.answer_len)
        return greedy_decode(self.backbone, self.prefix(prompt), self.answer_len, use_cache)

    def num_parameters(self) -> int:
        """Trainable parameter count, the tied embedding counted once (latents and positions included)."""
        return sum(p.numel() for p in self.parameters())
