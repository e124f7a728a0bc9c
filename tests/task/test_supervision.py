"""Running-sum targets of step supervision, checked against Python integers."""

import random

import pytest
import torch

from latentrun.task.supervision import (
    LATENT_CHAINS,
    chain_length,
    digits_lsb_first,
    latent_hits,
    latent_loss,
    partial_product_steps,
    running_sum_targets,
    running_sums,
    step_names,
    step_targets,
    step_values,
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


def test_icot_steps_of_1234_times_5678_worked_by_hand():
    # 1234 × 8 = 9872; 1234 × 7 × 10 = 86380; 9872 + 86380 = 96252; 1234 × 6 × 100 = 740400;
    # 96252 + 740400 = 836652; 1234 × 5 × 1000 = 6170000; 836652 + 6170000 = 7006652 = 1234 × 5678.
    a, b = torch.tensor([1234, 12]), torch.tensor([5678, 34])
    assert step_values(a[:1], b[:1], 4, "partial_products").tolist() == [
        [9872, 86380, 96252, 740400, 836652, 6170000, 7006652]
    ]
    # 12 × 34: p0 = 12 × 4 = 48, p1 = 12 × 3 × 10 = 360, then the product 408.
    assert step_values(a[1:], b[1:], 2, "partial_products").tolist() == [[48, 360, 408]]
    assert partial_product_steps(a[1:], b[1:], 2).tolist() == [[48, 360]]
    assert step_values(a[1:], b[1:], 2).tolist() == [[48, 408]]  # running sums: 12 × 4, 12 × 34


def test_partial_products_alone_of_1234_times_5678_worked_by_hand():
    # The rows of the hand-worked chain above, without their sums: 9872 + 86380 + 740400 + 6170000 = 7006652.
    a, b = torch.tensor([1234, 12, 9999]), torch.tensor([5678, 34, 9009])
    values = step_values(a, b, 4, "partial_products_only")
    assert values.tolist() == [[9872, 86380, 740400, 6170000], [48, 360, 0, 0], [89991, 0, 0, 89991000]]
    assert supervised_latents(num_latent=7, operand_width=4, chain="partial_products_only") == 4
    assert step_targets(a, b, 4, 8, "partial_products_only")[0, 3].tolist() == [0, 0, 0, 0, 7, 1, 6, 0]


def test_icot_steps_with_each_sum_twice_worked_by_hand():
    # 1234 × 5678 as above: the sums 96252 and 836652 and the product each held by two latents.
    twice = step_values(torch.tensor([1234, 12]), torch.tensor([5678, 34]), 4, "partial_products_twice")
    assert twice[0].tolist() == [9872, 86380, 96252, 96252, 740400, 836652, 836652, 6170000, 7006652, 7006652]
    assert twice[1].tolist() == [48, 360, 408, 408, 0, 408, 408, 0, 408, 408]  # b = 0034: p2 = p3 = 0
    assert step_values(torch.tensor([12]), torch.tensor([34]), 2, "partial_products_twice").tolist() == [
        [48, 360, 408, 408]
    ]
    assert [chain_length(w, "partial_products_twice") for w in (2, 4, 6)] == [4, 10, 16]
    assert [chain_length(w, "partial_products") for w in (1, 2, 4)] == [2, 3, 7]  # p_0 and the product at 1 digit


@pytest.mark.parametrize("width,seed", [(3, 4), (4, 5), (6, 6)])
def test_icot_steps_are_schoolbook_rows_and_their_sums(width, seed):
    a, b = random_pairs(300, width, seed)
    values = step_values(torch.tensor(a), torch.tensor(b), width, "partial_products")
    assert values.shape == (300, 2 * width - 1)
    for i, (x, y) in enumerate(zip(a, b)):
        rows = [x * (y // 10**j % 10) * 10**j for j in range(width)]
        expected = [rows[0]]
        for j in range(1, width):
            if j > 1:
                expected.append(sum(rows[:j]))
            expected.append(rows[j])
        assert values[i].tolist() == [*expected, x * y]
    assert step_values(torch.tensor(a), torch.tensor(b), width, "partial_products_only").tolist() == [
        [x * (y // 10**j % 10) * 10**j for j in range(width)] for x, y in zip(a, b)
    ]


def test_supervised_readings_follow_the_models_chain():
    probe_logits = torch.randn(5, 8, 8, 10)  # 8 latents, 8-digit readings
    a, b = torch.tensor([1234, 9999, 1000, 7, 305]), torch.tensor([5678, 9999, 1, 999, 100])
    assert supervised_latents(num_latent=8, operand_width=4, chain="partial_products") == 7
    assert supervised_latents(num_latent=5, operand_width=4, chain="partial_products") == 5
    readings, targets = supervised_readings(probe_logits, a, b, operand_width=4, chain="partial_products")
    assert torch.equal(readings, probe_logits[:, :7]) and targets.shape == (5, 7, 8)
    assert targets[0, 2].tolist() == [2, 5, 2, 6, 9, 0, 0, 0]  # 96252, least significant first
    assert targets[1, 6].tolist() == [1, 0, 0, 0, 8, 9, 9, 9]  # 9999 × 9999 = 99980001
    assert torch.equal(step_targets(a, b, 4, 8), running_sum_targets(a, b, 4, 8))
    with pytest.raises(ValueError, match="chain must be one of running_sums, partial_products"):
        step_values(a, b, 4, "icot")
    with pytest.raises(ValueError, match="chain must be one of running_sums, partial_products"):
        supervised_latents(num_latent=8, operand_width=4, chain="icot")


def test_step_names_by_hand():
    assert step_names(4, "running_sums") == ("s1", "s2", "s3", "product")
    assert step_names(4, "partial_products") == ("p0", "p1", "s2", "p2", "s3", "p3", "product")
    assert step_names(4, "partial_products_only") == ("p0", "p1", "p2", "p3")
    assert step_names(4, "partial_products_twice") == (
        "p0", "p1", "s2", "s2", "p2", "s3", "s3", "p3", "product", "product"
    )  # fmt: skip
    assert step_names(1, "partial_products_twice") == ("p0", "product", "product")
    with pytest.raises(ValueError, match="chain must be one of"):
        step_names(4, "rows")


@pytest.mark.parametrize("chain", LATENT_CHAINS)
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
def test_a_name_for_every_step(chain, width):
    assert len(step_names(width, chain)) == chain_length(width, chain)
