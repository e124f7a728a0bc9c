import inspect
import json

import pytest
import torch
from support import ROOT

import latentrun.config.components  # noqa: F401
from latentrun.core.registry import REGISTRIES, Registry
from latentrun.models.rules import CHAIN_MODELS
from latentrun.task.chains import RunningSumChain
from latentrun.task.multiplication import Batch

SCHEMA = json.loads((ROOT / "schemas" / "experiment.schema.json").read_text())
ENTRIES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]
# The keyword arguments config/build.py passes beside each section: supplied by the runner, not the config.
RUNTIME = {
    "model": {
        "vocab_size",
        "prompt_len",
        "answer_len",
        "latent_probe",
        "latent_teacher",
        "column_head",
        "digit_places",
    },
    "dataset": {"seed"},
    "loss": set(),
    "optimizer": {"model"},
    "scheduler": {"optimizer", "max_steps"},
    "curriculum": {"chain"},
}
# A chain model is built with its chain's length and whether it thinks, instead of a latent probe,
# and with the place ids of its chain's tokens beside the prompt's and the answer's.
CHAIN_MODEL_RUNTIME = {
    "vocab_size",
    "prompt_len",
    "answer_len",
    "chain_len",
    "continuous_thoughts",
    "digit_places",
    "chain_places",
}


# Internalization counts the examples seen (Deng's removal rate) and draws its smoothing offsets
# from the run's seed.
INTERNALIZE_RUNTIME = {"chain", "batch_size", "seed"}


def runtime_keys(kind: str, name: str) -> set[str]:
    if kind == "curriculum" and name == "internalize":
        return INTERNALIZE_RUNTIME
    return CHAIN_MODEL_RUNTIME if kind == "model" and name in CHAIN_MODELS else RUNTIME[kind]


def schema_params(kind: str, name: str) -> dict:
    return SCHEMA["$defs"][f"{kind}.{name}"]["properties"]


def defaults(kind: str, name: str, **overrides) -> dict:
    section = {key: spec["default"] for key, spec in schema_params(kind, name).items()}
    return {"name": name, **section, **overrides}


def test_registry_basics():
    registry = Registry("widget")

    @registry.register("round_widget")
    def make(colour, *, size):
        return (colour, size)

    assert registry.names() == ["round_widget"] and "round_widget" in registry
    assert registry.build({"name": "round_widget", "colour": "red"}, size=3) == ("red", 3)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("round_widget")(make)
    with pytest.raises(KeyError, match="did you mean 'round_widget'"):
        registry.get("round_widgit")


def signature(kind: str, name: str) -> list[inspect.Parameter]:
    return list(inspect.signature(REGISTRIES[kind].get(name)).parameters.values())


# Variants (functions that fix some arguments and pass **kwargs on) have no parameter list to read;
# test_every_entry_needs_exactly_its_schema_keys checks them from outside.
CLASSES = [(k, n) for k, n in ENTRIES if not any(p.kind is p.VAR_KEYWORD for p in signature(k, n))]


@pytest.mark.parametrize("kind,name", CLASSES)
def test_constructor_parameters_and_schema_agree_both_ways(kind, name):
    assert {p.name for p in signature(kind, name)} - runtime_keys(kind, name) == set(schema_params(kind, name))


def runtime_for(kind: str, name: str) -> dict:
    """Small stand-ins for what the runner passes beside a section of `kind` naming `name`."""
    if kind == "model" and name in CHAIN_MODELS:
        return {
            "vocab_size": 13,
            "prompt_len": 6,
            "answer_len": 4,
            "chain_len": 3,
            "continuous_thoughts": True,
            "digit_places": ([1, 2, 0, 1, 2, 0], [1, 2, 3, 4]),
            "chain_places": [1, 2, 3],
        }
    if kind == "model":
        places = ([1, 2, 0, 1, 2, 0], [1, 2, 3, 4])
        return {
            "vocab_size": 13,
            "prompt_len": 6,
            "answer_len": 4,
            "latent_probe": False,
            "latent_teacher": False,
            "column_head": False,
            "digit_places": places,
        }
    if kind == "dataset":
        return {"seed": 0}
    if kind == "optimizer":
        return {"model": small_model("latent_transformer")}
    if kind == "scheduler":
        return {"optimizer": torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), "max_steps": 10}
    if kind == "curriculum":
        extra = {"batch_size": 8, "seed": 0} if name == "internalize" else {}
        return {"chain": RunningSumChain(small_task()), **extra}
    return {}


@pytest.mark.parametrize("kind,name", ENTRIES)
def test_every_entry_needs_exactly_its_schema_keys(kind, name):
    """Seen from outside, variants included: the schema's keys build it, each one is needed (no
    constructor default can drift from the schema's), and a key the schema lacks is refused."""
    registry, section, runtime = REGISTRIES[kind], defaults(kind, name), runtime_for(kind, name)
    assert set(section) - {"name"} == set(schema_params(kind, name)) and runtime_keys(kind, name) == set(runtime)
    registry.build(section, **runtime)
    for key in set(section) - {"name"}:
        with pytest.raises(TypeError):
            registry.build({k: v for k, v in section.items() if k != key}, **runtime)
    with pytest.raises(TypeError):
        registry.build({**section, "not_a_schema_key": 1}, **runtime)


@pytest.mark.parametrize("kind", REGISTRIES)
def test_schema_name_enum_lists_exactly_the_registered_names(kind):
    assert sorted(SCHEMA["$defs"][kind]["properties"]["name"]["enum"]) == REGISTRIES[kind].names()


def small_model(name: str):
    runtime = runtime_for("model", name)
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


# The rate each registered schedule gives updates 0..6 of a 6-step run at a peak of 0.5, worked out
# by hand from the schema's descriptions (a new scheduler needs its row here).
SCHEDULE_CURVES = {
    # 2 steps of linear warmup (0.5/2, 0.5), then cosine from 0.5 to 0.1 x 0.5 over steps 2..6:
    # 0.05 + 0.45 * (1 + cos(pi * p)) / 2 at p = 0, 1/4, 1/2, 3/4, 1, with cos(pi/4) = sqrt(1/2).
    "warmup_cosine": (
        {"warmup_steps": 2, "min_lr_ratio": 0.1},
        [0.25, 0.5, 0.5, 0.05 + 0.225 * (1 + 0.5**0.5), 0.275, 0.05 + 0.225 * (1 - 0.5**0.5), 0.05],
    ),
    # 4 steps of linear warmup (0.5/4, 2 x 0.5/4, ...), then the peak throughout.
    "constant": ({"warmup_steps": 4}, [0.125, 0.25, 0.375, 0.5, 0.5, 0.5, 0.5]),
}


@pytest.mark.parametrize("name", REGISTRIES["scheduler"].names())
def test_every_scheduler_steps(name):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = REGISTRIES["scheduler"].build(defaults("scheduler", name), optimizer=optimizer, max_steps=1000)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert 0 < optimizer.param_groups[0]["lr"] <= 1.0


@pytest.mark.parametrize("name", REGISTRIES["scheduler"].names())
def test_every_scheduler_sets_the_rate_its_schema_describes(name):
    """A schedule that leaves the rate alone (or scales it wrongly) fails here, not only in a long run."""
    section, expected = SCHEDULE_CURVES[name]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = REGISTRIES["scheduler"].build(defaults("scheduler", name, **section), optimizer=optimizer, max_steps=6)
    rates = []
    for _ in expected:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx(expected, abs=1e-12)
