import pytest
import torch

from latentrun.task.multiplication import EQ_TOKEN, MUL_TOKEN, PAD_TOKEN, MultiplicationTask, ProblemError, pair_hash


def make_task(**overrides) -> MultiplicationTask:
    params = dict(
        min_digits=1,
        max_digits=2,
        operand_width=None,
        product_width=None,
        lsb_first=True,
        zero_pad=True,
        sampling="value",
        holdout_fraction=0.1,
        val_size=300,
        test_size=300,
        exclude=(),
        seed=0,
    )
    params.update(overrides)
    return MultiplicationTask(**params)


def test_encoding_is_lsb_first_and_zero_padded():
    task = make_task(max_digits=3)
    batch = task.encode(torch.tensor([123, 7]), torch.tensor([45, 0]))
    assert batch.prompt.tolist() == [[3, 2, 1, MUL_TOKEN, 5, 4, 0, EQ_TOKEN], [7, 0, 0, MUL_TOKEN, 0, 0, 0, EQ_TOKEN]]
    assert batch.answer.tolist() == [[5, 3, 5, 5, 0, 0], [0, 0, 0, 0, 0, 0]]  # 5535, 0
    assert task.decode(batch.answer).tolist() == [5535, 0]


def test_msb_first_with_padding_token():
    task = make_task(max_digits=3, lsb_first=False, zero_pad=False)
    batch = task.encode(torch.tensor([123, 7]), torch.tensor([45, 0]))
    assert batch.prompt[1].tolist() == [PAD_TOKEN, PAD_TOKEN, 7, MUL_TOKEN, PAD_TOKEN, PAD_TOKEN, 0, EQ_TOKEN]
    assert batch.answer[0].tolist() == [PAD_TOKEN, PAD_TOKEN, 5, 5, 3, 5]
    assert task.decode(batch.answer).tolist() == [5535, 0]


def test_widths_are_configurable():
    task = make_task(max_digits=2, operand_width=4, product_width=9)
    assert (task.prompt_len, task.answer_len) == (10, 9)
    batch = task.train_batch(1, 64)
    assert batch.prompt.shape == (64, 10) and batch.answer.shape == (64, 9)
    assert bool((task.decode(batch.answer) == batch.a * batch.b).all())


@pytest.mark.parametrize("sampling", ["value", "digits"])
def test_train_batches_are_pure_functions_of_seed_step_rank(sampling):
    task = make_task(sampling=sampling)
    first = task.train_batch(7, 128, rank=0)
    assert torch.equal(first.prompt, make_task(sampling=sampling).train_batch(7, 128, rank=0).prompt)
    assert not torch.equal(first.prompt, task.train_batch(8, 128, rank=0).prompt)
    assert not torch.equal(first.prompt, task.train_batch(7, 128, rank=1).prompt)
    assert not torch.equal(first.prompt, make_task(seed=1).train_batch(7, 128, rank=0).prompt)


@pytest.mark.parametrize("sampling", ["value", "digits"])
def test_operands_have_the_configured_digit_counts(sampling):
    task = make_task(min_digits=2, max_digits=3, sampling=sampling)
    batch = task.train_batch(1, 4000)
    lengths = {len(str(v)) for v in torch.cat([batch.a, batch.b]).tolist()}
    assert lengths == {2, 3}
    assert bool((task.decode(batch.answer) == batch.a * batch.b).all())


@pytest.mark.parametrize("sampling", ["value", "digits"])
def test_min_equal_to_max_digits_gives_exactly_n_digit_operands_as_the_papers(sampling):
    """The papers' 4×4: both operands 1000..9999, spread over the whole range, in training and splits."""
    task = make_task(min_digits=4, max_digits=4, sampling=sampling, val_size=500, test_size=500)
    batch = task.train_batch(1, 4000)
    for values in (batch.a, batch.b, task.split("val").a, task.split("test").b):
        assert int(values.min()) >= 1000 and int(values.max()) <= 9999
    assert int(batch.a.min()) < 1100 and int(batch.a.max()) > 9900  # the whole range, not a corner of it


def test_training_never_draws_held_out_pairs():
    task = make_task(holdout_fraction=0.3)
    for step in range(1, 20):
        batch = task.train_batch(step, 512)
        assert not bool(task.is_held_out(batch.a, batch.b).any())


def test_splits_are_held_out_disjoint_distinct_and_deterministic():
    task = make_task(max_digits=3, val_size=500, test_size=500)
    val, test = task.split("val"), task.split("test")
    assert len(val) == 500 and len(test) == 500
    val_pairs = set(zip(val.a.tolist(), val.b.tolist()))
    test_pairs = set(zip(test.a.tolist(), test.b.tolist()))
    assert len(val_pairs) == 500 and len(test_pairs) == 500 and not val_pairs & test_pairs
    assert bool(task.is_held_out(val.a, val.b).all()) and bool(task.is_held_out(test.a, test.b).all())
    assert torch.equal(val.prompt, make_task(max_digits=3, val_size=500, test_size=500).split("val").prompt)


def test_small_ranges_give_every_held_out_pair_once():
    task = make_task(max_digits=1, val_size=1000)
    val = task.split("val")
    expected = [
        (a, b) for a in range(10) for b in range(10) if float(pair_hash(torch.tensor([a]), torch.tensor([b]))) < 0.05
    ]
    assert sorted(zip(val.a.tolist(), val.b.tolist())) == expected


def test_parse_problem():
    task = make_task(max_digits=2)
    assert task.parse_problem("37*45") == (37, 45)
    assert task.parse_problem(" 3 x 9 ") == (3, 9)
    for bad in ["37*", "abc", "3**4", "-3*4", "3.5*2", "", "123*4"]:
        with pytest.raises(ProblemError):
            task.parse_problem(bad)


def test_test_split_shares_no_pair_with_training_or_validation():
    """The figure of record is honest only if no test pair was ever trained on or chose the checkpoint."""
    task = make_task(max_digits=2, holdout_fraction=0.2, val_size=400, test_size=400)
    test_pairs = set(zip(task.split("test").a.tolist(), task.split("test").b.tolist()))
    val_pairs = set(zip(task.split("val").a.tolist(), task.split("val").b.tolist()))
    trained = set()
    for step in range(1, 60):
        batch = task.train_batch(step, 512)
        trained |= set(zip(batch.a.tolist(), batch.b.tolist()))
    assert len(trained) > 5000  # most of the 10^4 pairs: overlap would have shown
    assert len(test_pairs) == 400 and not test_pairs & trained and not test_pairs & val_pairs
