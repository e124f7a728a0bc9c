"""Sweeps on the command line: lists and ranges of values, their product, and what is refused."""

import pytest

from latentrun.config import ConfigError, sweep


@pytest.mark.parametrize(
    "text,values",
    [
        ("optimizer.lr=1e-3,3e-4", ("1e-3", "3e-4")),
        ("optimizer.lr=1e-3", ("1e-3",)),
        ("model.num_latent=range(0,8,2)", ("0", "2", "4", "6")),
        ("seed=range(3)", ("0", "1", "2")),
        ("train.max_steps=range(10, 30, 10)", ("10", "20")),
        ("optimizer.lr=range(0.1,0.4,0.1)", ("0.1", "0.2", "0.3")),  # decimal steps: no 0.30000000000000004
        ("optimizer.lr=range(1,0,-0.25)", ("1.0", "0.75", "0.5", "0.25")),
        ('experiment="a,b"', ('"a,b"',)),  # a quoted comma is part of the value
        ("experiment='a,b',c", ("'a,b'", "c")),
    ],
)
def test_values(text, values):
    [axis] = sweep.parse([text])
    assert axis.values == values
    assert axis.swept == (len(values) > 1)


def test_points_are_the_cartesian_product_last_axis_fastest():
    axes = sweep.parse(["optimizer.lr=1e-3,3e-4", "model.num_latent=1,2", "train.max_steps=5"])
    assert sweep.is_sweep(axes)
    assert sweep.points(axes) == [
        ["optimizer.lr=1e-3", "model.num_latent=1", "train.max_steps=5"],
        ["optimizer.lr=1e-3", "model.num_latent=2", "train.max_steps=5"],
        ["optimizer.lr=3e-4", "model.num_latent=1", "train.max_steps=5"],
        ["optimizer.lr=3e-4", "model.num_latent=2", "train.max_steps=5"],
    ]
    assert sweep.points([]) == [[]]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["seed=1", "seed=2"], "--set seed=2: seed is already set by --set seed=1"),
        (["seed=1,1"], "1 listed twice"),
        (["seed=1,"], "an empty value"),
        (["seed=range(0,4,0)"], "step of range() must not be 0"),
        (["seed=range(a)"], "takes one to three numbers"),
        (["seed=range(5,1)"], "is empty"),
        (["seed=range(0,100000)"], "at most 10,000"),
        (["seed=range(0,1e28)"], "at most 10,000"),  # issue 22 item 7: these two gave decimal tracebacks
        (["seed=range(0,1e1000000)"], "at most 10,000"),
        (["model.d_model=[1,[2]],3"], "single YAML scalar"),  # a list inside a list
        (["train.max_steps"], "expected KEY=VALUE"),
    ],
)
def test_refused(overrides, message):
    with pytest.raises(ConfigError) as raised:
        sweep.parse(overrides)
    assert message in str(raised.value), str(raised.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        sweep.parse(["seed=1,1", "train.max_steps=", "seed=3"])
    assert len(raised.value.problems) == 2  # seed=3 repeats seed: one problem; max_steps= is a null, fine


def test_the_product_is_bounded():
    with pytest.raises(ConfigError, match="points"):
        sweep.parse(["seed=range(200)", "train.max_steps=range(1,201)"])
