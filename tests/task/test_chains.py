"""Written chains: the running sums, or ICoT's partial products and running sums, as tokens in the
task's digit order, read back to numbers."""

import random

import pytest
import torch

from latentrun.task.chains import PartialProductChain, RunningSumChain, build_chain, step_widths
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


def running_sums_by_hand(x: int, y: int, width: int) -> list[int]:
    return [x * (y % 10**k) for k in range(1, width)]


def partial_products_by_hand(x: int, y: int, width: int) -> list[int]:
    """p0, p1, s2, p2, ..., p_{W-1} as a schoolbook page writes them."""
    written = [x * (y % 10)]
    for j in range(1, width):
        if j > 1:
            written.append(x * (y % 10**j))
        written.append(x * (y // 10**j % 10) * 10**j)
    return written


@pytest.mark.parametrize(
    "chain_class,by_hand,width",
    [(RunningSumChain, running_sums_by_hand, w) for w in (2, 4, 6)]
    + [(PartialProductChain, partial_products_by_hand, w) for w in (2, 3, 5)],
)
def test_values_invert_tokens_for_random_operands(chain_class, by_hand, width):
    rng = random.Random(width)
    a = [rng.randrange(10**width) for _ in range(300)]
    b = [rng.randrange(10**width) for _ in range(300)]
    chain = chain_class(task(width))
    values = chain.values(chain.tokens(torch.tensor(a), torch.tensor(b)))
    assert values.shape == (300, len(chain.widths))
    for i, (x, y) in enumerate(zip(a, b)):
        assert values[i].tolist() == by_hand(x, y, width)


def test_tokens_before_counts_what_the_first_steps_take():
    chain = RunningSumChain(task(3))
    assert [chain.tokens_before(k) for k in range(3)] == [0, 4, 9]


# Lines of Deng et al.'s ICoT test sets (../shared/data/icot/, recorded here so the test needs no
# file beside the repository): operands and chain least significant digit first, `+ ( )` separators.
ICOT_LINES = [
    "7 6 9 2 * 1 6 3 6||7 6 9 2 0 + 0 2 0 8 7 1 ( 7 8 9 0 8 1 ) + 0 0 1 0 9 8 0 ( 7 8 0 1 7 0 1 ) "
    "+ 0 0 0 2 0 8 7 1 #### 7 8 0 3 7 8 8 1",
    "5 0 0 8 * 3 5 9 7||5 1 0 4 2 + 0 5 2 0 0 4 ( 5 6 2 4 2 4 ) + 0 0 5 4 0 2 7 ( 5 6 7 8 2 6 7 ) "
    "+ 0 0 0 5 3 0 6 5 #### 5 6 7 3 6 6 3 6",
    "0 7 6 1 * 9 5 3 3||0 3 0 5 1 + 0 0 5 3 8 0 ( 0 3 5 8 9 0 ) + 0 0 0 1 0 5 0 ( 0 3 5 9 9 5 0 ) "
    "+ 0 0 0 0 1 0 5 0 #### 0 3 5 9 0 6 5 0",
]


def lsb_number(digits: str) -> int:
    return int("".join(reversed(digits.split())))


@pytest.mark.parametrize("line", ICOT_LINES)
def test_the_partial_product_chain_writes_icot_chains_digit_for_digit(line):
    problem, rest = line.split("||")
    written, product = rest.split(" #### ")
    a, b = (lsb_number(operand) for operand in problem.split(" * "))
    chain = PartialProductChain(task(4))
    tokens = chain.tokens(torch.tensor([a]), torch.tensor([b]))
    assert tokens[0].tolist() == [int(token) for token in written.split() if token not in "+()"]
    assert chain.values(tokens)[0, -1].item() + chain.values(tokens)[0, -2].item() == lsb_number(product)


def test_partial_product_steps_by_hand():
    # 12 × 34: p0 = 12 × 4 = 48, p1 = 12 × 3 × 10 = 360.
    chain = PartialProductChain(task(2))
    assert chain.steps == (("p0", 3), ("p1", 4))
    tokens = chain.tokens(torch.tensor([12]), torch.tensor([34]))
    assert text(tokens[0]) == "840" + "0630"
    assert chain.values(tokens)[0].tolist() == [48, 360]
    # 123 × 456: p0 = 738, p1 = 6150, s2 = 6888, p2 = 49200, written with 4, 5, 5 and 6 digits.
    chain = PartialProductChain(task(3))
    assert chain.steps == (("p0", 4), ("p1", 5), ("s2", 5), ("p2", 6))
    tokens = chain.tokens(torch.tensor([123]), torch.tensor([456]))
    assert chain.values(tokens)[0].tolist() == [738, 6150, 6888, 49200]
    assert text(tokens[0]) == "8370" + "05160" + "88860" + "002940"
    msb = PartialProductChain(task(3, lsb_first=False))
    assert text(msb.tokens(torch.tensor([123]), torch.tensor([456]))[0]) == "0738" + "06150" + "06888" + "049200"


def test_partial_product_widths_match_icots_chain_lengths():
    assert PartialProductChain(task(1)).widths == (2,)  # p0 is the product itself
    assert PartialProductChain(task(4)).widths == (5, 6, 6, 7, 7, 8)
    assert PartialProductChain(task(4)).length == 39  # Deng's 46 tokens less 3 "+" and 2 "( )" pairs
    assert PartialProductChain(task(5)).length == 64  # Deng's 5x5 chain: 74 tokens less 4 "+" and 3 "( )" pairs
    assert [name for name, _ in PartialProductChain(task(5)).steps] == ["p0", "p1", "s2", "p2", "s3", "p3", "s4", "p4"]


def test_labels_name_each_tokens_step_and_digit():
    assert RunningSumChain(task(3)).labels() == ["s1d0", "s1d1", "s1d2", "s1d3", "s2d0", "s2d1", "s2d2", "s2d3", "s2d4"]
    assert PartialProductChain(task(2)).labels() == ["p0d0", "p0d1", "p0d2", "p1d0", "p1d1", "p1d2", "p1d3"]
    assert RunningSumChain(task(2, lsb_first=False)).labels() == ["s1d2", "s1d1", "s1d0"]


def test_build_chain_picks_by_the_config_name():
    assert type(build_chain(task(3), "running_sums")) is RunningSumChain
    assert type(build_chain(task(3), "partial_products")) is PartialProductChain
