"""What a probe tries to read: the intermediate quantities of long multiplication, per problem.

Every target is a function of the operands alone, so a probe asks whether a hidden state holds it,
whatever the model writes. Digits are least significant first; `width` is the task's operand width W.

- `running_sum`: a × (b mod 10^k) for k = 1..W, each as 2W digits (classification per digit);
  the quantity step supervision and written chains ask for (task/supervision.py).
- `column_sum`: ĉ_k = Σ_{i+j=k} a_i·b_j + carry_k for columns k = 0..2W-1, a regression; the
  product's digit k is ĉ_k mod 10 (Bai et al. 2025).
- `carry`: carry_k = ⌊ĉ_{k-1} / 10⌋ into column k = 1..2W-1 (classification; carry_0 is always 0).
- `partial_product`: a × b_j for j = 0..W-1, each as W+1 digits (classification per digit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentrun.task.supervision import digits_lsb_first, running_sums

TARGETS = ("running_sum", "column_sum", "carry", "partial_product")
CLASSIFICATION, REGRESSION = "accuracy", "r2"  # the score each kind of target is read with


@dataclass(frozen=True)
class Target:
    """One family of quantities: `values` (N, C) holds component c of problem n."""

    name: str
    metric: str  # CLASSIFICATION (values are class ids 0..) or REGRESSION (values are numbers)
    components: tuple[str, ...]
    values: Tensor  # (N, C) int64 for classification, float64 for regression


def column_sums(a: Tensor, b: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """(ĉ, carries), both (N, 2W) int64: ĉ_k of every column and the carry into it (carry_0 = 0)."""
    digits_a, digits_b = digits_lsb_first(a, width), digits_lsb_first(b, width)  # (N, W)
    raw = torch.zeros(a.shape[0], 2 * width, dtype=torch.int64)
    for i in range(width):
        raw[:, i : i + width] += digits_a[:, i : i + 1] * digits_b  # a_i · b_j lands in column i + j
    sums, carries = torch.zeros_like(raw), torch.zeros_like(raw)
    for k in range(2 * width):
        carries[:, k] = sums[:, k - 1] // 10 if k else 0
        sums[:, k] = raw[:, k] + carries[:, k]
    return sums, carries


def build_targets(a: Tensor, b: Tensor, width: int, names: tuple[str, ...]) -> list[Target]:
    """The targets `names` (a subset of TARGETS, in their order there) for (N,) int64 operands."""
    a, b = a.cpu(), b.cpu()
    built = []
    for name in TARGETS:
        if name in names:
            built.append(_BUILDERS[name](a, b, width))
    return built


def _running_sum(a: Tensor, b: Tensor, width: int) -> Target:
    digits = digits_lsb_first(running_sums(a, b, width), 2 * width)  # (N, W, 2W)
    labels = tuple(f"k{k}d{d}" for k in range(1, width + 1) for d in range(2 * width))
    return Target("running_sum", CLASSIFICATION, labels, digits.flatten(1))


def _column_sum(a: Tensor, b: Tensor, width: int) -> Target:
    sums, _ = column_sums(a, b, width)
    return Target("column_sum", REGRESSION, tuple(f"k{k}" for k in range(2 * width)), sums.double())


def _carry(a: Tensor, b: Tensor, width: int) -> Target:
    _, carries = column_sums(a, b, width)
    return Target("carry", CLASSIFICATION, tuple(f"k{k}" for k in range(1, 2 * width)), carries[:, 1:])


def _partial_product(a: Tensor, b: Tensor, width: int) -> Target:
    products = a[:, None] * digits_lsb_first(b, width)  # (N, W): a × b_j
    digits = digits_lsb_first(products, width + 1)  # (N, W, W+1)
    labels = tuple(f"j{j}d{d}" for j in range(width) for d in range(width + 1))
    return Target("partial_product", CLASSIFICATION, labels, digits.flatten(1))


_BUILDERS = {
    "running_sum": _running_sum,
    "column_sum": _column_sum,
    "carry": _carry,
    "partial_product": _partial_product,
}
