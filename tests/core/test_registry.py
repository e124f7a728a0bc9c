import json
from pathlib import Path

import pytest
import torch

import latentrun.config.components  # noqa: F401
from latentrun.core.registry import REGISTRIES, Registry
from latentrun.task.multiplication import Batch

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "experiment.schema.json").read_text())
ENTRIES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]


def schema_params(kind: str, name: str) -> dict:
    return SCHEMA["$defs"][f"{kind}.{name}"]["properties"]


def defaults(kind: str, name: str, **overrides) -> dict:
    section = {key: spec["default"] for key, spec in schema_params(kind, name).items()}
    return {"name": name, **section, **overrides}


def test_registry_basics():
    registry = Registry("widget")

    @registry.register("round_widget", runtime_args=("size",))
    def make(colour, *, size):
        return (colour, size)

    assert registry.names() == ["round_widget"] and "round_widget" in registry
    assert registry.build({"name": "round_widget", "colour": "red"}, size=3) == ("red", 3)
    assert registry.config_params("round_widget") == {"colour"}
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("round_widget")(make)
    with pytest.raises(KeyError, match="did you mean 'round_widget'"):
        registry.get("round_widgit")


@pytest.mark.parametrize("kind,name", ENTRIES)
def test_constructor_parameters_and_schema_agree_both_ways(kind, name):
    assert REGISTRIES[kind].config_params(name) == set(schema_params(kind, name))


@pytest.mark.parametrize("kind", REGISTRIES)
def test_schema_name_enum_lists_exactly_the_registered_names(kind):
    assert sorted(SCHEMA["$defs"][kind]["properties"]["name"]["enum"]) == REGISTRIES[kind].names()


def small_model(name: str):
    runtime = {"vocab_size": 13, "prompt_len": 6, "answer_len": 4}
    if "latent_probe" in REGISTRIES["model"].runtime_args(name):
        runtime["latent_probe"] = False
    if "chain_len" in REGISTRIES["model"].runtime_args(name):
        runtime.update(chain_len=3, continuous_thoughts=True)
    return REGISTRIES["model"].build(defaults("model", name, d_model=32, num_layers=2, num_heads=2), **runtime)


def small_task():
    return REGISTRIES["dataset"].build(defaults("dataset", "multiplication", val_size=50, test_size=50), seed=0)


@pytest.mark.parametrize("name", REGISTRIES["model"].names())
def test_every_model_forward_and_generate(name):
    batch = small_task().train_batch(1, 5)
    model = small_model(name)
    assert model(batch.prompt, batch.answer).shape == (5, 4, 13)
    assert model.generate(batch.prompt).shape == (5, 4)


@pytest.mark.parametrize("name", REGISTRIES["dataset"].names())
def test_every_dataset_draws_batches_and_splits(name):
    task = REGISTRIES["dataset"].build(defaults("dataset", name, val_size=50, test_size=50), seed=0)
    assert isinstance(task.train_batch(1, 8), Batch) and len(task.split("val")) == 50


@pytest.mark.parametrize("name", REGISTRIES["loss"].names())
def test_every_loss_backpropagates(name):
    logits = torch.randn(4, 3, 13, requires_grad=True)
    output = REGISTRIES["loss"].build(defaults("loss", name))(logits, torch.randint(0, 10, (4, 3)))
    output.loss.backward()
    assert output.loss.ndim == 0 and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", REGISTRIES["optimizer"].names())
def test_every_optimizer_updates_the_model(name):
    model = small_model("simple_transformer")
    optimizer = REGISTRIES["optimizer"].build(defaults("optimizer", name), model=model)
    before = [p.detach().clone() for p in model.parameters()]
    batch = small_task().train_batch(1, 4)
    model(batch.prompt, batch.answer).sum().backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", REGISTRIES["scheduler"].names())
def test_every_scheduler_steps(name):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = REGISTRIES["scheduler"].build(defaults("scheduler", name), optimizer=optimizer, max_steps=1000)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert 0 < optimizer.param_groups[0]["lr"] <= 1.0
