"""Step supervision: the running sums of long multiplication that latent tokens learn to hold.

Long multiplication of a by b adds a × (digit j of b) × 10^j for j = 0, 1, ...; after k digits of b
the partial result is the running sum a × (b mod 10^k). Step supervision (latentrun's own
objective, akin to but not Bai et al. 2025's, see `column_sums`) asks latent k (1-based) to hold
that number, read off its final hidden state by a linear probe as `width` digits, least significant first. b has `operand_width` digit positions
in the prompt, so latents beyond those are unsupervised: their running sum would just be a × b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def supervised_latents(num_latent: int, operand_width: int) -> int:
    """How many latents, counted from the first, have a running sum to learn."""
    return min(num_latent, operand_width)


def running_sums(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """(B, steps) int64: a × (b mod 10^k) for k = 1..steps, from (B,) int64 operands."""
    powers = 10 ** torch.arange(1, steps + 1, dtype=torch.int64, device=b.device)  # (steps,)
    return a[:, None] * (b[:, None] % powers)


def digits_lsb_first(values: Tensor, width: int) -> Tensor:
    """(...) non-negative int64 → (..., width) decimal digits 0-9, least significant first."""
    powers = 10 ** torch.arange(width, dtype=torch.int64, device=values.device)
    return values[..., None] // powers % 10


def running_sum_targets(a: Tensor, b: Tensor, steps: int, width: int) -> Tensor:
    """(B, steps, width) digit targets of the first `steps` latents."""
    return digits_lsb_first(running_sums(a, b, steps), width)


def supervised_readings(probe_logits: Tensor, a: Tensor, b: Tensor, operand_width: int) -> tuple[Tensor, Tensor]:
    """The probe's readings of the supervised latents (B, K, W, 10), from its readings of every
    latent (B, L, W, 10), with their running-sum digits (B, K, W)."""
    steps = supervised_latents(probe_logits.size(1), operand_width)
    return probe_logits[:, :steps], running_sum_targets(a, b, steps, probe_logits.size(2))


def latent_loss(probe_logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over every digit of every supervised latent: probe logits (B, K, W, 10)
    for the supervised latents only, targets (B, K, W)."""
    return F.cross_entropy(probe_logits.flatten(0, 2).float(), targets.flatten())


def latent_hits(probe_logits: Tensor, targets: Tensor) -> Tensor:
    """(B, K) bool: the probe reads latent k's whole running sum right."""
    return (probe_logits.argmax(dim=-1) == targets).all(dim=-1)


def column_sums(a: Tensor, b: Tensor, operand_width: int, width: int) -> Tensor:
    """(B, width) int64: ĉ_k = Σ_{i+j=k} a_i·b_j + carry_{k-1}, carry_k = ĉ_k // 10, for product
    digit k = 0..width-1 (least significant first): the quantity Bai et al. 2025's auxiliary loss
    regresses at the position that writes product digit k. ĉ_k mod 10 is that digit."""
    a_digits, b_digits = digits_lsb_first(a, operand_width), digits_lsb_first(b, operand_width)  # (B, W)
    sums = a.new_zeros((a.shape[0], width))
    for i in range(operand_width):
        for j in range(operand_width):
            if i + j < width:
                sums[:, i + j] += a_digits[:, i] * b_digits[:, j]
    carry = a.new_zeros(a.shape[0])
    columns = []
    for k in range(width):
        column = sums[:, k] + carry  # (B,)
        columns.append(column)
        carry = column // 10
    return torch.stack(columns, dim=1)
