"""Step supervision: the steps of long multiplication that latent tokens learn to hold.

Long multiplication of a by b adds the partial products p_j = a × (digit j of b) × 10^j for
j = 0, 1, ...; after k digits of b the partial result is the running sum s_k = a × (b mod 10^k).
Step supervision (latentrun's own objective, akin to but not Bai et al. 2025's, see
`column_sums`) asks latent k (1-based) to hold the k-th number of a chain of these steps, read off
its final hidden state by a linear probe as `width` digits, least significant first. The model's
`chain` names the steps (`LATENT_CHAINS`): `running_sums` s_1, ..., s_W (the last is the product),
or `partial_products`, ICoT's finer steps p_0, p_1, s_2, p_2, ..., p_{W-1} and then the product, so
that each latent either multiplies a by one digit of b or adds two numbers, or
`partial_products_only`, the rows p_0, ..., p_{W-1} alone, so that latents only multiply and the
answer, written least significant digit first, does the adding, or `partial_products_twice`,
ICoT's chain with every sum (and the product) held by two latents in a row, so that each sum gets
a second recurrent pass to mend the first's carries. b has `operand_width` digit positions in the
prompt, so latents beyond the chain's steps are unsupervised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LATENT_CHAINS = ("running_sums", "partial_products", "partial_products_only", "partial_products_twice")


def supervised_latents(num_latent: int, operand_width: int, chain: str = "running_sums") -> int:
    """How many latents, counted from the first, have a step to learn."""
    return min(num_latent, chain_length(operand_width, chain))


def chain_length(operand_width: int, chain: str) -> int:
    """How many numbers `chain` has at `operand_width` digits (W running sums or partial products,
    ICoT's 2W - 2 steps and the product, or those with the W - 1 sums and the product twice),
    counted off the chain itself so that the two never disagree."""
    zero = torch.zeros(1, dtype=torch.int64)
    return step_values(zero, zero, operand_width, chain).size(1)


def running_sums(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """(B, steps) int64: a × (b mod 10^k) for k = 1..steps, from (B,) int64 operands."""
    powers = 10 ** torch.arange(1, steps + 1, dtype=torch.int64, device=b.device)  # (steps,)
    return a[:, None] * (b[:, None] % powers)


def partial_products(a: Tensor, b: Tensor, operand_width: int) -> Tensor:
    """(B, W) int64, W = operand_width: the rows of long multiplication p_j = a × b_j × 10^j."""
    powers = 10 ** torch.arange(operand_width, dtype=torch.int64, device=b.device)  # (W,)
    return a[:, None] * (b[:, None] // powers % 10) * powers


def partial_product_steps(a: Tensor, b: Tensor, operand_width: int) -> Tensor:
    """(B, 2W-2) int64, W = operand_width (B, 1) for W = 1: ICoT's chain p_0, p_1, s_2, p_2, s_3,
    ..., s_{W-1}, p_{W-1}, each partial product followed by the running sum it completes once
    two are there to add, from (B,) int64 operands."""
    partial = partial_products(a, b, operand_width)  # (B, W)
    running = partial.cumsum(dim=1)  # (B, W): column j is s_{j+1}
    columns = [partial[:, 0]]
    for j in range(1, operand_width):
        if j > 1:
            columns.append(running[:, j - 1])
        columns.append(partial[:, j])
    return torch.stack(columns, dim=1)


def step_values(a: Tensor, b: Tensor, operand_width: int, chain: str = "running_sums") -> Tensor:
    """(B, S) int64: the numbers latents 1..S hold under `chain`: the running sums s_1..s_W (the
    last is the product); ICoT's chain and then the product, with each sum and the product twice
    under partial_products_twice; or the partial products alone."""
    if chain == "running_sums":
        return running_sums(a, b, operand_width)  # (B, W)
    if chain == "partial_products_only":
        return partial_products(a, b, operand_width)  # (B, W)
    if chain not in ("partial_products", "partial_products_twice"):
        raise ValueError(f"chain must be one of {', '.join(LATENT_CHAINS)}, got {chain!r}")
    steps = torch.cat([partial_product_steps(a, b, operand_width), (a * b)[:, None]], dim=1)  # (B, 2W-1)
    if chain == "partial_products":
        return steps
    # ICoT's sums sit at columns 2, 4, ..., 2W-4 (s_2 .. s_(W-1)), the product last: each twice.
    sums = set(range(2, 2 * operand_width - 2, 2)) | {steps.size(1) - 1}
    columns = [c for c in range(steps.size(1)) for _ in range(2 if c in sums else 1)]
    return steps[:, columns]  # (B, 3W-2); (B, 3) for W = 1: p_0, then the product twice


def step_names(operand_width: int, chain: str = "running_sums") -> tuple[str, ...]:
    """What latents 1..S hold under `chain`, one short name each, in the order of `step_values`:
    `p1` is a × b_1 × 10, `s2` is a × (b mod 100), `product` is a × b; under
    partial_products_twice a sum's second latent repeats its name."""
    width = operand_width
    if chain == "running_sums":
        return tuple(f"s{k}" for k in range(1, width)) + ("product",)
    if chain == "partial_products_only":
        return tuple(f"p{j}" for j in range(width))
    if chain not in ("partial_products", "partial_products_twice"):
        raise ValueError(f"chain must be one of {', '.join(LATENT_CHAINS)}, got {chain!r}")
    twice = 2 if chain == "partial_products_twice" else 1
    names = ["p0"]
    for j in range(1, width):
        names += [f"s{j}"] * twice if j > 1 else []
        names.append(f"p{j}")
    return tuple(names) + ("product",) * twice


def digits_lsb_first(values: Tensor, width: int) -> Tensor:
    """(...) non-negative int64 → (..., width) decimal digits 0-9, least significant first."""
    powers = 10 ** torch.arange(width, dtype=torch.int64, device=values.device)
    return values[..., None] // powers % 10


def running_sum_targets(a: Tensor, b: Tensor, steps: int, width: int) -> Tensor:
    """(B, steps, width) digit targets of the first `steps` latents."""
    return digits_lsb_first(running_sums(a, b, steps), width)


def step_targets(a: Tensor, b: Tensor, operand_width: int, width: int, chain: str = "running_sums") -> Tensor:
    """(B, S, width) digits, least significant first, of every number `chain` asks latents to hold."""
    return digits_lsb_first(step_values(a, b, operand_width, chain), width)


def supervised_readings(
    probe_logits: Tensor, a: Tensor, b: Tensor, operand_width: int, chain: str = "running_sums"
) -> tuple[Tensor, Tensor]:
    """The probe's readings of the supervised latents (B, K, W, 10), from its readings of every
    latent (B, L, W, 10), with the digits of the steps they hold (B, K, W)."""
    steps = supervised_latents(probe_logits.size(1), operand_width, chain)
    return probe_logits[:, :steps], step_targets(a, b, operand_width, probe_logits.size(2), chain)[:, :steps]


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
