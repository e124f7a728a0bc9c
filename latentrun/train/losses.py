"""Training objectives over the product digits, plus optional step supervision of the latents.

Each loss maps teacher-forced logits (B, P, V) and target digits (B, P) to a scalar plus named
parts for logging. `combined` adds a differentiable stand-in for exact-match accuracy: the
expected exact match is the product over positions of the probability the model gives the true
digit (the chance that sampling every digit gets the whole product right), averaged over the batch.
Given the probe's reading of the supervised latents and their running-sum digits, every loss adds
latent_supervision_weight × their cross-entropy (see latentrun/task/supervision.py). Given the
column-sum heads' readings at the answer positions, it adds column_sum_weight × the mean squared
error of ĉ_k / 10 (Bai et al. 2025's auxiliary loss; the tenth keeps its scale near the digits').
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor

from latentrun.core.registry import LOSSES
from latentrun.task.supervision import latent_loss


@dataclass
class LossOutput:
    """The scalar to minimise and its detached parts, for logging."""

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


def digit_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy over every product digit: logits (B, P, V), target (B, P)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())


class ProductLoss(ABC):
    """A loss on the product digits plus the weighted latent term; subclasses define the former."""

    def __init__(self, latent_supervision_weight: float, column_sum_weight: float) -> None:
        self.latent_supervision_weight = latent_supervision_weight
        self.column_sum_weight = column_sum_weight

    @abstractmethod
    def answer_loss(self, logits: Tensor, target: Tensor) -> LossOutput:
        """The loss on the product digits alone, logits (B, P, V) against target (B, P)."""

    def __call__(
        self,
        logits: Tensor,
        target: Tensor,
        latent_logits: Tensor | None = None,
        latent_target: Tensor | None = None,
        *,
        columns: Tensor | None = None,
        column_target: Tensor | None = None,
    ) -> LossOutput:
        """Loss of logits (B, P, V) against target (B, P); with latent_logits (B, K, W, 10) and
        latent_target (B, K, W), plus the weighted step-supervision term, logged as `latent_loss`;
        with columns (B, P) and column_target (B, P) int64 (ĉ_k), plus the weighted column-sum
        regression, logged as `column_loss`."""
        output = self.answer_loss(logits, target)
        if latent_logits is not None and latent_target is not None and self.latent_supervision_weight > 0:
            latent = latent_loss(latent_logits, latent_target)
            output = LossOutput(
                output.loss + self.latent_supervision_weight * latent, {**output.parts, "latent_loss": latent.detach()}
            )
        if columns is not None and column_target is not None and self.column_sum_weight > 0:
            column = F.mse_loss(columns.float(), column_target.float() / 10)
            output = LossOutput(
                output.loss + self.column_sum_weight * column, {**output.parts, "column_loss": column.detach()}
            )
        return output


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(ProductLoss):
    """Mean cross-entropy on the product digits."""

    def answer_loss(self, logits: Tensor, target: Tensor) -> LossOutput:
        ce = digit_cross_entropy(logits, target)
        return LossOutput(ce, {"ce": ce.detach()})


@LOSSES.register("combined")
class CombinedLoss(ProductLoss):
    """Cross-entropy plus accuracy_weight × (1 − expected exact match)."""

    def __init__(self, accuracy_weight: float, latent_supervision_weight: float, column_sum_weight: float) -> None:
        super().__init__(latent_supervision_weight, column_sum_weight)
        self.accuracy_weight = accuracy_weight

    def answer_loss(self, logits: Tensor, target: Tensor) -> LossOutput:
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, P, V)
        true_log_probs = log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, P)
        ce = -true_log_probs.mean()
        expected_exact_match = true_log_probs.sum(dim=1).exp().mean()
        loss = ce + self.accuracy_weight * (1.0 - expected_exact_match)
        return LossOutput(loss, {"ce": ce.detach(), "expected_exact_match": expected_exact_match.detach()})
