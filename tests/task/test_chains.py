"""Written chains: the running sums as tokens, in the task's digit order, read back to numbers."""

import random

import pytest
import torch

from latentrun.task.chains import RunningSumChain, step_widths
from latentrun.task.multiplication import PAD_TOKEN, MultiplicationTask


def task(operand_width: int, lsb_first: bool = True, zero_pad: bool = True) -> MultiplicationTask:
    return MultiplicationTask(
        min_digits=1,
        max_digits=operand_width,
        operand_width=operand_width,
        product_width=None,
        lsb_first=lsb_first,
        zero_pad=zero_pad,
        sampling="value",
        holdout_fraction=0.1,
        val_size=10,
        test_size=10,
        exclude=(),
        seed=0,
    )


def text(tokens: torch.Tensor) -> str:
    return "".join("_" if t == PAD_TOKEN else str(t) for t in tokens.tolist())


def test_step_k_has_width_plus_k_digits_and_the_product_is_not_written_twice():
    assert step_widths(1) == ()
    assert step_widths(2) == (3,)
    assert step_widths(3) == (4, 5)
    assert step_widths(5) == (6, 7, 8, 9)
    assert RunningSumChain(task(5)).length == 30


def test_chain_places_are_each_digits_place_within_its_step_in_the_written_order():
    assert RunningSumChain(task(3)).places() == [1, 2, 3, 4, 1, 2, 3, 4, 5]
    assert RunningSumChain(task(3, lsb_first=False)).places() == [4, 3, 2, 1, 5, 4, 3, 2, 1]
    assert RunningSumChain(task(1)).places() == []


@pytest.mark.parametrize(
    "width,lsb_first,a,b,expected_steps,expected_text",
    [
        (2, True, 12, 34, [48], "840"),  # 12 × 4 = 48, least significant digit first
        (2, False, 12, 34, [48], "048"),
        (3, True, 12, 34, [48, 408], "8400" + "80400"),  # then 12 × 34 = 408
        (3, False, 12, 34, [48, 408], "0048" + "00408"),
        (3, True, 999, 999, [8991, 98901], "1998" + "10989"),  # the widest numbers fit their widths
        (3, True, 7, 0, [0, 0], "0000" + "00000"),
    ],
)
def test_known_products_write_and_read_their_running_sums(width, lsb_first, a, b, expected_steps, expected_text):
    chain = RunningSumChain(task(width, lsb_first))
    tokens = chain.tokens(torch.tensor([a]), torch.tensor([b]))
    assert text(tokens[0]) == expected_text
    assert chain.values(tokens)[0].tolist() == expected_steps
    answer = chain.task.encode(torch.tensor([a]), torch.tensor([b])).answer
    assert chain.task.decode(answer).item() == a * b  # the answer follows the chain, as ever


def test_unpadded_tasks_pad_the_chain_the_same_way():
    chain = RunningSumChain(task(3, zero_pad=False))
    tokens = chain.tokens(torch.tensor([12]), torch.tensor([34]))
    assert text(tokens[0]) == "84__" + "804__"
    assert chain.values(tokens)[0].tolist() == [48, 408]


@pytest.mark.parametrize("width", [2, 4, 6])
def test_values_invert_tokens_for_random_operands(width):
    rng = random.Random(width)
    a = [rng.randrange(10**width) for _ in range(300)]
    b = [rng.randrange(10**width) for _ in range(300)]
    chain = RunningSumChain(task(width))
    values = chain.values(chain.tokens(torch.tensor(a), torch.tensor(b)))
    assert values.shape == (300, width - 1)
    for i, (x, y) in enumerate(zip(a, b)):
        assert values[i].tolist() == [x * (y % 10**k) for k in range(1, width)]


def test_tokens_before_counts_what_the_first_steps_take():
    chain = RunningSumChain(task(3))
    assert [chain.tokens_before(k) for k in range(3)] == [0, 4, 9]
