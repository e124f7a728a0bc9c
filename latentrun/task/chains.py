"""Written chains of thought: the steps of long multiplication, written out as tokens.

Long multiplication of a by b adds the partial products p_j = a × b_j × 10^j (b_j: digit j of b);
after k digits of b the partial result is the running sum s_k = a × (b mod 10^k) (see
supervision.py). b has W = operand_width digit positions and s_W is the product itself, which the
model writes anyway as its answer. Two chains write these steps before the product:

- `running_sums` (latentrun's): s_1, ..., s_{W-1}. Each written number is one row of the schoolbook
  method and the next one is a short step away.
- `partial_products` (Deng et al.'s ICoT data, `../shared/data/icot/README.md`): p_0, p_1, s_2, p_2,
  s_3, ..., s_{W-1}, p_{W-1}: each partial product, then the running sum it completes. Finer steps:
  a partial product is one digit of b times a, and each sum adds two written numbers. Deng writes
  `+`, `(` and `)` between them; at fixed widths they say nothing the position does not, so they
  are left out (39 tokens at 4x4 where Deng's chain has 46).

s_k is below 10^(W+k) and written with W + k digits; p_j is below 10^(W+1+j) and written with
W + 1 + j digits, both in the task's digit order and padding, with no separators: every step has a
fixed width, so its place in the sequence says which step it is. For 12 × 34 (W = 2, least
significant first) the running sums are `840` (48) and the partial products `840 0630` (48, 360),
before the answer `8040` (408).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentrun.task.multiplication import MultiplicationTask
from latentrun.task.supervision import partial_product_steps, running_sums


def step_widths(operand_width: int) -> tuple[int, ...]:
    """Digits of each running sum of the `running_sums` chain: W + k for k = 1..W-1 (none when
    operands have one position)."""
    return tuple(operand_width + k for k in range(1, operand_width))


@dataclass(frozen=True)
class Chain:
    """Writes and reads the chain of one task: its steps' names and widths, targets, and values.
    A subclass says which numbers the steps are (`steps`, `step_values`)."""

    task: MultiplicationTask

    @property
    def steps(self) -> tuple[tuple[str, int], ...]:
        """(name, digits) of every written step, in writing order: `s2` is a × (b mod 100), `p1` is
        a × b_1 × 10."""
        raise NotImplementedError

    def step_values(self, a: Tensor, b: Tensor) -> Tensor:
        """(B, K) int64 numbers the K steps write, for (B,) int64 operands."""
        raise NotImplementedError

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(width for _, width in self.steps)

    @property
    def length(self) -> int:
        """Tokens in the whole written chain."""
        return sum(self.widths)

    def tokens(self, a: Tensor, b: Tensor) -> Tensor:
        """(B, C) chain tokens for (B,) int64 operands: step 1, step 2, ... each in the task's order."""
        values = self.step_values(a, b)  # (B, K)
        pieces = [self.task.number_tokens(values[:, k], width) for k, width in enumerate(self.widths)]
        return torch.cat(pieces, dim=1) if pieces else a.new_zeros((a.shape[0], 0))

    def places(self) -> list[int]:
        """(C,) Abacus place id of every chain token: each digit's place within its step's number."""
        return [place for width in self.widths for place in self.task.number_places(width)]

    def labels(self) -> list[str]:
        """(C,) name of every chain token: its step and digit, `s2d0` the units of s_2."""
        return [f"{name}d{place - 1}" for name, width in self.steps for place in self.task.number_places(width)]

    def values(self, tokens: Tensor) -> Tensor:
        """(B, K) integers the steps of (B, C) chain tokens write (padding reads as 0): the inverse
        of `tokens`, for reading what a model wrote."""
        steps, start = [], 0
        for width in self.widths:
            steps.append(self.task.decode(tokens[:, start : start + width]))
            start += width
        return torch.stack(steps, dim=1) if steps else tokens.new_zeros((tokens.shape[0], 0))

    def tokens_before(self, steps: int) -> int:
        """Chain tokens taken by the first `steps` steps: what `steps` continuous thoughts replace."""
        return sum(self.widths[:steps])


class RunningSumChain(Chain):
    """s_1, ..., s_{W-1}: the running sums a × (b mod 10^k)."""

    @property
    def steps(self) -> tuple[tuple[str, int], ...]:
        return tuple((f"s{k}", width) for k, width in enumerate(step_widths(self.task.operand_width), start=1))

    def step_values(self, a: Tensor, b: Tensor) -> Tensor:
        return running_sums(a, b, len(self.steps))  # (B, W-1)


class PartialProductChain(Chain):
    """p_0, p_1, s_2, p_2, s_3, ..., s_{W-1}, p_{W-1}: Deng et al.'s ICoT chain without separators."""

    @property
    def steps(self) -> tuple[tuple[str, int], ...]:
        width = self.task.operand_width
        steps = [("p0", width + 1)]
        for j in range(1, width):
            if j > 1:  # s_j = p_0 + ... + p_{j-1}, written once two partial products are there to add
                steps.append((f"s{j}", width + j))
            steps.append((f"p{j}", width + 1 + j))
        return tuple(steps)

    def step_values(self, a: Tensor, b: Tensor) -> Tensor:
        return partial_product_steps(a, b, self.task.operand_width)  # (B, 2W-2), (B, 1) for W = 1


CHAINS: dict[str, type[Chain]] = {"running_sums": RunningSumChain, "partial_products": PartialProductChain}


def build_chain(task: MultiplicationTask, name: str) -> Chain:
    """The chain `model.chain` names, for `task`."""
    return CHAINS[name](task)
