"""Bai et al.'s column sums ĉ_k = Σ_{i+j=k} a_i·b_j + carry, checked against long multiplication by hand."""

import random

import torch

from latentrun.task.supervision import column_sums


def test_column_sums_worked_by_hand():
    # 12 × 34: ĉ0 = 2·4 = 8; ĉ1 = 2·3 + 1·4 + 0 = 10 (carry 1); ĉ2 = 1·3 + 1 = 4; ĉ3 = 0 → 408
    # 99 × 99: ĉ0 = 81 (carry 8); ĉ1 = 81 + 81 + 8 = 170 (carry 17); ĉ2 = 81 + 17 = 98 (carry 9); ĉ3 = 9 → 9801
    sums = column_sums(torch.tensor([12, 99]), torch.tensor([34, 99]), operand_width=2, width=4)
    assert sums.tolist() == [[8, 10, 4, 0], [81, 170, 98, 9]]


def test_each_column_sum_ends_in_its_product_digit():
    rng = random.Random(0)
    a = [rng.randrange(10_000) for _ in range(200)]
    b = [rng.randrange(10_000) for _ in range(200)]
    sums = column_sums(torch.tensor(a), torch.tensor(b), operand_width=4, width=8)
    for row, x, y in zip(sums.tolist(), a, b):
        digits = [int(d) for d in reversed(str(x * y).zfill(8))]
        assert [value % 10 for value in row] == digits
