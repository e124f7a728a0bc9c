"""What every model is built from, as nanoGPT's GPTConfig: the task's shape and the backbone's size.

One frozen dataclass shared by `Backbone`, `LatentTransformer` and `ChainTransformer`, so the keys
they have in common are written once; each model adds only the arguments of its own kind. The
registered builders (`latent_transformer`, `chain_transformer`) take the config section's keys
flat, as the registry passes them, and `split` them into this and the model's own arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """The sizes of the task and of the pre-LN GPT backbone; field names match the schema's keys."""

    vocab_size: int
    prompt_len: int  # Tp: tokens of `a*b=`
    answer_len: int  # P: digits of the product
    d_model: int  # D
    num_layers: int
    num_heads: int  # nh, dividing D
    mlp_ratio: int
    dropout: float
    position: str  # learned | abacus (place-value embeddings on top of the learned positions)
    abacus_max_offset: int  # the largest random shift of the place ids while training
    # (prompt places (Tp,), answer places (P,)): each token's place within its number, 0 for none;
    # read only by position 'abacus'.
    digit_places: tuple[Sequence[int], Sequence[int]] | None = None

    @classmethod
    def split(cls, kwargs: dict[str, Any]) -> tuple[ModelConfig, dict[str, Any]]:
        """(the config of the keys every model shares, the other keys): how a registered builder
        separates the flat keywords the registry passes it. A missing shared key is a TypeError."""
        names = {field.name for field in dataclasses.fields(cls)}
        shared = {key: value for key, value in kwargs.items() if key in names}
        return cls(**shared), {key: value for key, value in kwargs.items() if key not in names}
