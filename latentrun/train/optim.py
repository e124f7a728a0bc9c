"""Optimizers, built from a config section and the model whose parameters they update."""

from __future__ import annotations

import torch
from torch import nn

from latentrun.core.registry import OPTIMIZERS


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings (≥ 2 dims) but not biases and norm gains, as nanoGPT does."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@OPTIMIZERS.register("adamw")
def adamw(
    lr: float, weight_decay: float, beta1: float, beta2: float, eps: float, *, model: nn.Module
) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on matrices and embeddings."""
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=(beta1, beta2), eps=eps)
