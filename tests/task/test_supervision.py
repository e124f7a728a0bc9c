"""Running-sum targets of step supervision, checked against Python integers."""

import random

import pytest
import torch

from latentrun.task.supervision import (
    digits_lsb_first,
    latent_hits,
    latent_loss,
    running_sum_targets,
    running_sums,
    supervised_latents,
    supervised_readings,
)


def random_pairs(n: int, max_digits: int, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    draw = lambda: rng.randrange(10 ** rng.randint(1, max_digits))  # noqa: E731
    return [draw() for _ in range(n)], [draw() for _ in range(n)]


@pytest.mark.parametrize("max_digits,seed", [(2, 0), (4, 1), (9, 2)])
def test_running_sums_are_the_partial_products_of_long_multiplication(max_digits, seed):
    a, b = random_pairs(500, max_digits, seed)
    sums = running_sums(torch.tensor(a), torch.tensor(b), max_digits)
    assert sums.dtype == torch.int64 and sums.shape == (500, max_digits)
    for i, (x, y) in enumerate(zip(a, b)):
        partial = 0
        for k in range(1, max_digits + 1):
            partial += x * (y // 10 ** (k - 1) % 10) * 10 ** (k - 1)  # add digit k of b's row
            assert sums[i, k - 1].item() == partial == x * (y % 10**k)
        assert partial == x * y  # after every digit of b, the running sum is the product


def test_targets_are_the_running_sums_written_least_significant_digit_first():
    a, b = random_pairs(300, 3, seed=3)
    targets = running_sum_targets(torch.tensor(a), torch.tensor(b), steps=3, width=6)
    assert targets.shape == (300, 3, 6)
    for i, (x, y) in enumerate(zip(a, b)):
        for k in range(1, 4):
            text = str(x * (y % 10**k)).zfill(6)[::-1]
            assert targets[i, k - 1].tolist() == [int(c) for c in text]


def test_digits_lsb_first_keeps_leading_dimensions():
    values = torch.tensor([[0, 7], [120, 999]])
    assert digits_lsb_first(values, 3).tolist() == [[[0, 0, 0], [7, 0, 0]], [[0, 2, 1], [9, 9, 9]]]


def test_latents_beyond_the_digits_of_b_are_not_supervised():
    assert supervised_latents(num_latent=8, operand_width=3) == 3
    assert supervised_latents(num_latent=2, operand_width=3) == 2


def test_latent_loss_and_hits():
    targets = torch.randint(0, 10, (4, 2, 6))
    perfect = torch.nn.functional.one_hot(targets, 10).float() * 30
    assert latent_loss(perfect, targets) < 1e-6
    assert latent_hits(perfect, targets).all()
    wrong = perfect.clone()
    wrong[1, 0, 5] = wrong[1, 0, 5].roll(1)
    hits = latent_hits(wrong, targets)
    assert hits.shape == (4, 2) and not hits[1, 0] and hits.sum() == 7
    uniform = torch.zeros(4, 2, 6, 10)
    assert latent_loss(uniform, targets).item() == pytest.approx(torch.log(torch.tensor(10.0)).item())


def test_supervised_readings_keep_the_first_operand_width_latents():
    probe_logits = torch.randn(5, 4, 6, 10)  # 4 latents, 6-digit readings
    a, b = torch.tensor([12, 999, 0, 7, 305]), torch.tensor([345, 12, 5, 999, 100])
    readings, targets = supervised_readings(probe_logits, a, b, operand_width=3)
    assert torch.equal(readings, probe_logits[:, :3])
    assert torch.equal(targets, running_sum_targets(a, b, 3, 6))
