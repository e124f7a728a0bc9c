"""Written chains of thought: the running sums of long multiplication, written out as tokens.

Long multiplication of a by b adds a × (digit j of b) × 10^j for j = 0, 1, ...; after k digits of b
the partial result is the running sum a × (b mod 10^k) (see supervision.py). Explicit chain of
thought writes those sums before the product, so each written number is one row of the schoolbook
method and the next one is a short step away. b has W = operand_width digit positions; the sum after
all W of them is the product itself, which the model writes anyway as its answer, so the chain holds
steps k = 1..W-1. Step k is below 10^W × 10^k and is written with W + k digits, in the task's digit
order and padding, with no separators: every step has a fixed width, so its place in the sequence
says which step it is. For 12 × 34 (W = 2, least significant first) the chain is `840` (48) and
the answer `8040` (408).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentrun.task.multiplication import MultiplicationTask
from latentrun.task.supervision import running_sums


def step_widths(operand_width: int) -> tuple[int, ...]:
    """Digits of each written step: W + k for k = 1..W-1 (none when operands have one position)."""
    return tuple(operand_width + k for k in range(1, operand_width))


@dataclass(frozen=True)
class RunningSumChain:
    """Writes and reads the chain of one task: widths of its steps, targets, and their values."""

    task: MultiplicationTask

    @property
    def widths(self) -> tuple[int, ...]:
        return step_widths(self.task.operand_width)

    @property
    def length(self) -> int:
        """Tokens in the whole written chain."""
        return sum(self.widths)

    def tokens(self, a: Tensor, b: Tensor) -> Tensor:
        """(B, C) chain tokens for (B,) int64 operands: step 1, step 2, ... each in the task's order."""
        sums = running_sums(a, b, len(self.widths))  # (B, K)
        pieces = [self.task.number_tokens(sums[:, k], width) for k, width in enumerate(self.widths)]
        return torch.cat(pieces, dim=1) if pieces else a.new_zeros((a.shape[0], 0))

    def places(self) -> list[int]:
        """(C,) Abacus place id of every chain token: each digit's place within its step's number."""
        return [place for width in self.widths for place in self.task.number_places(width)]

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
