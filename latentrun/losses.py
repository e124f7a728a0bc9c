"""Training objectives over the product digits.

Each loss maps teacher-forced logits (B, P, V) and target digits (B, P) to a scalar plus named
parts for logging. `combined` adds a differentiable stand-in for exact-match accuracy: the
expected exact match is the product over positions of the probability the model gives the true
digit (the chance that sampling every digit gets the whole product right), averaged over the batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from latentrun.registry import LOSSES


@dataclass
class LossOutput:
    """The scalar to minimise and its detached parts, for logging."""

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


def digit_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy over every product digit: logits (B, P, V), target (B, P)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())


@LOSSES.register("cross_entropy")
class CrossEntropyLoss:
    """Mean cross-entropy on the product digits."""

    def __call__(self, logits: Tensor, target: Tensor) -> LossOutput:
        ce = digit_cross_entropy(logits, target)
        return LossOutput(ce, {"ce": ce.detach()})


@LOSSES.register("combined")
class CombinedLoss:
    """Cross-entropy plus accuracy_weight × (1 − expected exact match)."""

    def __init__(self, accuracy_weight: float) -> None:
        self.accuracy_weight = accuracy_weight

    def __call__(self, logits: Tensor, target: Tensor) -> LossOutput:
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, P, V)
        true_log_probs = log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, P)
        ce = -true_log_probs.mean()
        expected_exact_match = true_log_probs.sum(dim=1).exp().mean()
        loss = ce + self.accuracy_weight * (1.0 - expected_exact_match)
        return LossOutput(loss, {"ce": ce.detach(), "expected_exact_match": expected_exact_match.detach()})
