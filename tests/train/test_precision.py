"""latentrun.train.precision: what `auto` resolves to, the CPU probe, autocast and GradScaler state."""

import itertools

import pytest
import torch

from latentrun.config import ConfigError
from latentrun.train import precision

CPU = torch.device("cpu")


def no_probe():
    raise AssertionError("the probe must not run here")


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_is_taken_as_is_without_probing(name):
    assert precision.resolve(name, CPU, no_probe).name == name


@pytest.mark.parametrize(
    "fp32,bf16,expected",
    [
        (1.0, 0.5, "bf16"),  # twice as fast
        (1.0, 1.0 / 1.10, "bf16"),  # exactly the required margin
        (1.0, 0.95, "fp32"),  # faster, but within the noise margin
        (1.0, 1.2, "fp32"),  # slower
    ],
)
def test_auto_on_cpu_picks_bf16_only_when_the_probe_shows_it_clearly_faster(fp32, bf16, expected):
    choice = precision.resolve("auto", CPU, lambda: {"fp32": fp32, "bf16": bf16})
    assert choice.name == expected
    assert choice.timings == {"fp32": fp32, "bf16": bf16}
    assert "x the speed of fp32" in choice.reason


def test_auto_on_cuda_prefers_bf16_then_fp16(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert precision.resolve("auto", cuda, no_probe).name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision.resolve("auto", cuda, no_probe).name == "fp16"
    with pytest.raises(ConfigError, match="train.precision: bf16"):
        precision.resolve("bf16", cuda, no_probe)


def test_probe_alternates_precisions_and_reports_medians(monkeypatch):
    calls = []
    clock = itertools.count()
    monkeypatch.setattr(precision.time, "perf_counter", lambda: float(next(clock)))

    def run_pass(name):
        calls.append(name)
        if name == "bf16":
            next(clock)  # every bf16 pass takes one tick longer

    medians = precision.probe_seconds(run_pass, rounds=3)
    assert calls == ["fp32", "bf16"] + ["fp32", "bf16"] * 3  # warm-up, then interleaved rounds
    assert medians == {"fp32": 1.0, "bf16": 2.0}


def test_fp32_is_a_pass_through_and_has_no_scaler_state():
    amp = precision.MixedPrecision("fp32", CPU)
    layer = torch.nn.Linear(4, 4)
    with amp.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.float32
    assert amp.state_dict() == {} and not amp.skips_nonfinite_gradients


def test_bf16_autocasts_the_forward_pass_but_keeps_fp32_weights():
    amp = precision.MixedPrecision("bf16", CPU)
    layer = torch.nn.Linear(4, 4)
    with amp.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32


def test_fp16_scaler_state_round_trips_and_skips_overflowing_steps():
    amp = precision.MixedPrecision("fp16", CPU)
    layer = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.weight.detach().clone()
    amp.backward(layer(torch.full((1, 2), float("inf"))).sum())
    amp.unscale(optimizer)
    amp.step(optimizer)
    assert torch.equal(layer.weight, before), "an overflowing step must not update the weights"
    state = amp.state_dict()
    assert state["scale"] == 65536.0 * 0.5  # backed off once
    assert all(isinstance(value, (int, float)) for value in state.values())

    restored = precision.MixedPrecision("fp16", CPU)
    restored.load_state_dict(state)
    assert restored.state_dict() == state
