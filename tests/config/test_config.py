"""latentrun.config: YAML 1.2 parsing, file:line problems, overrides, defaults, dump/load."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import jsonschema
import pytest
from support import SMOKE

from latentrun import config
from latentrun.config import ConfigError, reader
from latentrun.train import rules as train_rules

FULL = """\
experiment: full_run
seed: 7
model:
  name: simple_transformer
  d_model: 64
  num_layers: 2
  num_heads: 4
dataset: {name: multiplication, min_digits: 1, max_digits: 3, operand_width: 4}
loss: {name: combined, accuracy_weight: 0.25}
optimizer:
  name: adamw
  lr: 1e-3
  eps: 1e-8
scheduler: {name: constant, warmup_steps: 10}
train: {max_steps: 100, device: cpu}
"""

# The schema's top level in order, less `extends`: a composition directive resolved away before validation.
SECTIONS = [key for key in config.load_schema()["properties"] if key != "extends"]


def write(tmp_path: Path, text: str | bytes, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def single_line_problems(err: ConfigError) -> list[str]:
    assert err.problems and str(err) == "\n".join(err.problems)
    for problem in err.problems:
        assert "\n" not in problem and "\r" not in problem
    return err.problems


def problems(path: Path | str, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.load(path, overrides)
    return single_line_problems(info.value)


def problems_in(tmp_path: Path, text: str | bytes, overrides: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    path = write(tmp_path, text)
    return str(path), problems(path, overrides)


# --- the schema and defaults ---------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12_and_its_defaults_resolve():
    jsonschema.Draft202012Validator.check_schema(config.load_schema())
    resolved = config.resolve({})
    assert list(resolved) == SECTIONS
    assert resolved["experiment"] is None  # no file, so no stem to fall back on


def test_missing_sections_and_keys_get_schema_defaults(tmp_path):
    cfg = config.load(write(tmp_path, "seed: 1\ntrain: {max_steps: 5}\n"))
    assert cfg["seed"] == 1
    assert cfg["model"] == {
        "name": "latent_transformer",
        "d_model": 384,
        "num_layers": 4,
        "num_heads": 8,
        "mlp_ratio": 4,
        "dropout": 0.0,
        "position": "learned",
        "abacus_max_offset": 10,
        "num_latent": 8,
        "latent_mode": "pause",
        "chain": "running_sums",
    }
    assert cfg["optimizer"] == {
        "name": "adamw",
        "lr": 0.0003,
        "weight_decay": 0.01,
        "beta1": 0.9,
        "beta2": 0.98,
        "eps": 1e-08,
    }
    assert cfg["loss"] == {"name": "cross_entropy", "latent_supervision_weight": 0.0, "column_sum_weight": 0.0}
    assert cfg["train"]["max_steps"] == 5 and cfg["train"]["batch_size"] == 256
    assert cfg["train"]["device"] == "auto"
    assert cfg["dataset"]["operand_width"] is None


def test_registry_defaults_follow_the_chosen_entry(tmp_path):
    cfg = config.load(write(tmp_path, "model: {name: simple_transformer}\nloss: {name: combined}\n"))
    assert "num_latent" not in cfg["model"]
    assert list(cfg["model"]) == [
        "name",
        "d_model",
        "num_layers",
        "num_heads",
        "mlp_ratio",
        "dropout",
        "position",
        "abacus_max_offset",
    ]
    assert cfg["loss"] == {
        "name": "combined",
        "accuracy_weight": 0.5,
        "latent_supervision_weight": 0.0,
        "column_sum_weight": 0.0,
    }


def test_integers_given_for_numbers_are_accepted_and_stored_as_floats(tmp_path):
    cfg = config.load(write(tmp_path, "optimizer: {name: adamw, lr: 1}\ntrain: {max_grad_norm: 2}\n"))
    assert cfg["optimizer"]["lr"] == 1.0 and type(cfg["optimizer"]["lr"]) is float
    assert type(cfg["train"]["max_grad_norm"]) is float


def test_experiment_defaults_to_the_file_stem(tmp_path):
    assert config.load(write(tmp_path, "seed: 1\n", "my_exp.yaml"))["experiment"] == "my_exp"
    assert config.load(write(tmp_path, "experiment: null\n", "other.yaml"))["experiment"] == "other"
    assert config.load(write(tmp_path, "experiment: named\n", "x.yaml"))["experiment"] == "named"
    assert config.load(write(tmp_path, "seed: 1\n", "y.yaml"), ["experiment=null"])["experiment"] == "y"
    path = write(tmp_path, "seed: 1\n", "has space.yaml")
    assert problems(path) == [f"{path}: experiment: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$, got 'has space'"]


def test_run_control_keys_are_real_keys():
    flat = config.flatten(config.resolve({}))
    assert config.RUN_CONTROL_KEYS <= flat.keys()


# --- YAML 1.2 scalars ----------------------------------------------------------------------------


def test_yaml_1_2_numbers_in_a_file(tmp_path):
    cfg = config.load(write(tmp_path, FULL))
    assert cfg["optimizer"]["lr"] == 0.001 and type(cfg["optimizer"]["lr"]) is float
    assert cfg["optimizer"]["eps"] == 1e-08
    cfg = config.load(write(tmp_path, "seed: 012\ntrain: {max_steps: 0x1F, log_every: 0o17}\n"))
    assert (cfg["seed"], cfg["train"]["max_steps"], cfg["train"]["log_every"]) == (12, 31, 15)


@pytest.mark.parametrize(
    "text, value",
    [
        ("3e-4", 0.0003),
        ("3.0e-4", 0.0003),
        ("1.", 1.0),
        (".5", 0.5),
        ("+1", 1),
        ("-012", -12),
        ("0o17", 15),
        ("0x1F", 31),
        ("null", None),
        ("~", None),
        ("", None),
        ("NULL", None),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("2020-01-01", "2020-01-01"),
        ("'12'", "12"),
        ('"true"', "true"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("!!float 1", 1.0),
        ("!!str 012", "012"),
    ],
)
def test_override_values_follow_yaml_1_2(text, value):
    key, parsed = config.parse_override(f"a.b={text}")
    assert key == "a.b"
    assert parsed == value and type(parsed) is type(value)


def test_special_floats():
    assert config.parse_override("k=.inf")[1] == math.inf
    assert config.parse_override("k=-.Inf")[1] == -math.inf
    assert math.isnan(config.parse_override("k=.nan")[1])


def test_yes_is_a_string_so_enums_and_booleans_reject_it(tmp_path):
    text = "train:\n  device: yes\ndataset:\n  lsb_first: no\n  name: multiplication\n"
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:2: train.device: must be one of 'auto', 'cpu', 'cuda', 'mps', got 'yes'",
        f"{path}:4: dataset.lsb_first: expected a boolean (true or false), got string 'no'"
        " (YAML 1.2: only true/false are booleans)",
    ]


def test_quoted_number_is_a_string(tmp_path):
    path, found = problems_in(tmp_path, "seed: '12'\n")
    assert found == [f"{path}:1: seed: expected an integer, got string '12'"]


# --- schema problems -----------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    path, found = problems_in(tmp_path, "seed: 1\nseeed: 2\nlr: 0.1\n")
    assert found == [
        f"{path}:2: seeed: unknown key 'seeed' (did you mean 'seed'?)",
        f"{path}:3: lr: unknown key 'lr' (did you mean 'optimizer.lr'?)",
    ]


def test_unknown_nested_keys(tmp_path):
    path, found = problems_in(tmp_path, "optimizer:\n  name: adamw\n  lrr: 0.1\ntrain:\n  batch_sise: 3\n")
    assert found == [
        f"{path}:3: optimizer.lrr: unknown key 'lrr' (did you mean 'lr'?)",
        f"{path}:5: train.batch_sise: unknown key 'batch_sise' (did you mean 'batch_size'?)",
    ]


def test_parameter_of_another_entry_is_unknown(tmp_path):
    path, found = problems_in(tmp_path, "model:\n  name: simple_transformer\n  num_latent: 4\n")
    assert found == [f"{path}:3: model.num_latent: unknown key 'num_latent' (a parameter of latent_transformer only)"]


def test_misspelt_registry_name_is_the_only_problem(tmp_path):
    path, found = problems_in(tmp_path, "seed: 1\nmodel:\n  name: latent_transformr\n  d_model: 64\n")
    assert found == [
        f"{path}:3: model.name: unknown model 'latent_transformr' (did you mean "
        "'latent_transformer'?); known: chain_transformer, latent_transformer, simple_transformer"
    ]


def test_bad_parameter_value_is_not_also_reported_as_unknown(tmp_path):
    path, found = problems_in(tmp_path, "model: {name: latent_transformer, d_model: x}\n")
    assert found == [f"{path}:1: model.d_model: expected an integer, got string 'x'"]


def test_missing_name_is_reported_at_the_section(tmp_path):
    path, found = problems_in(tmp_path, "seed: 1\nmodel:\n  d_model: 64\n")
    assert found == [f"{path}:2: model: missing required key 'name'"]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("train: {max_steps: abc}", "train.max_steps: expected an integer, got string 'abc'"),
        ("train: {max_steps: 1.0}", "train.max_steps: expected an integer, got float 1.0"),
        ("seed: true", "seed: expected an integer, got boolean true"),
        ("optimizer: {name: adamw, lr: abc}", "optimizer.lr: expected a number, got string 'abc'"),
        ("optimizer: {name: adamw, lr: .nan}", "optimizer.lr: expected a finite number, got float .nan"),
        (
            "dataset: {name: multiplication, operand_width: x}",
            "dataset.operand_width: expected an integer or null, got string 'x'",
        ),
        ("train: null", "train: expected a mapping, got null"),
        ("model: [1]", "model: expected a mapping, got a list"),
        ("optimizer: {name: adamw, lr: 0}", "optimizer.lr: must be > 0, got 0"),
        ("optimizer: {name: adamw, beta2: 1.0}", "optimizer.beta2: must be < 1, got 1.0"),
        ("seed: -1", "seed: must be >= 0, got -1"),
        ("dataset: {name: multiplication, holdout_fraction: 0.7}", "dataset.holdout_fraction: must be <= 0.5, got 0.7"),
        ("experiment: 'a b'", "experiment: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$, got 'a b'"),
        (
            "dataset: {name: multiplication, sampling: digit}",
            "dataset.sampling: must be one of 'value', 'digits', got 'digit' (did you mean 'digits'?)",
        ),
    ],
)
def test_wrong_types_and_out_of_range_values(tmp_path, line, problem):
    path, found = problems_in(tmp_path, f"# a comment\n{line}\n")
    assert found == [f"{path}:2: {problem}"]


def test_all_problems_reported_together_sorted_by_line(tmp_path):
    text = (
        "train:\n  max_steps: 0\n  device: cuda:0\n"
        "optimizer: {name: adamw, lr: -1}\n"
        "seed: x\n"
        "model: {name: latent_transformer, num_heads: 0, bogus: 1}\n"
    )
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:2: train.max_steps: must be >= 1, got 0",
        f"{path}:3: train.device: must be one of 'auto', 'cpu', 'cuda', 'mps', got 'cuda:0' (did you mean 'cuda'?)",
        f"{path}:4: optimizer.lr: must be > 0, got -1",
        f"{path}:5: seed: expected an integer, got string 'x'",
        f"{path}:6: model.num_heads: must be >= 1, got 0",
        f"{path}:6: model.bogus: unknown key 'bogus'; known keys: name, d_model, num_layers, num_heads, "
        "mlp_ratio, dropout, num_latent, latent_mode, chain, position, abacus_max_offset",
    ]


def test_cross_field_checks(tmp_path):
    text = (
        "dataset:\n  name: multiplication\n  min_digits: 3\n  max_digits: 2\n"
        "  operand_width: 1\n  product_width: 3\n"
        "model:\n  name: latent_transformer\n  d_model: 64\n  num_heads: 6\n"
    )
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:3: dataset.min_digits: min_digits (3) must be <= max_digits (2)",
        f"{path}:5: dataset.operand_width: operand_width (1) must be >= max_digits (2)",
        f"{path}:10: model.num_heads: num_heads (6) must divide d_model (64)",
    ]


def test_cross_field_checks_blame_the_key_the_user_wrote(tmp_path):
    text = (
        "dataset:\n  name: multiplication\n  max_digits: 3\n  product_width: 5\n"
        "model:\n  name: simple_transformer\n  d_model: 100\n"
    )
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:4: dataset.product_width: product_width (5) must be >= 2 * max_digits (6)",
        f"{path}:7: model.d_model: num_heads (8) must divide d_model (100)",
    ]


def test_cross_field_checks_accept_consistent_widths(tmp_path):
    text = "dataset: {name: multiplication, max_digits: 3, operand_width: 4, product_width: 8}\n"
    cfg = config.load(write(tmp_path, text))
    assert cfg["dataset"]["product_width"] == 8


def test_step_supervision_needs_latent_tokens(tmp_path):
    text = "model: {name: simple_transformer}\nloss:\n  name: combined\n  latent_supervision_weight: 1\n"
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:4: loss.latent_supervision_weight: step supervision needs latent tokens: "
        "a latent_transformer with num_latent >= 1 (model is simple_transformer)"
    ]
    path, found = problems_in(
        tmp_path, "model: {name: latent_transformer, num_latent: 0}\n", ("loss.latent_supervision_weight=0.5",)
    )
    assert found == [
        "--set loss.latent_supervision_weight=0.5: loss.latent_supervision_weight: step supervision "
        "needs latent tokens: a latent_transformer with num_latent >= 1 (model is latent_transformer, "
        "num_latent 0)"
    ]
    assert config.load(write(tmp_path, "loss: {name: cross_entropy, latent_supervision_weight: 1}\n"))


def test_teacher_forcing_is_a_nested_section_with_defaults_and_checks(tmp_path):
    assert config.load(write(tmp_path, "seed: 1\n"))["train"]["teacher_forcing"] == {
        "schedule": "linear",
        "start_step": 0,
        "end_step": 0,
        "min_ratio": 1.0,
    }
    cfg = config.load(
        write(tmp_path, "train:\n  teacher_forcing: {schedule: cosine, end_step: 50}\n"),
        ["train.teacher_forcing.min_ratio=0.25"],
    )
    assert cfg["train"]["teacher_forcing"] == {"schedule": "cosine", "start_step": 0, "end_step": 50, "min_ratio": 0.25}
    text = "train:\n  teacher_forcing:\n    schedule: linaer\n    start_step: 9\n    end_step: 3\n    ratio: 1\n"
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:3: train.teacher_forcing.schedule: must be one of 'linear', 'cosine', 'step', got 'linaer' "
        "(did you mean 'linear'?)",
        f"{path}:6: train.teacher_forcing.ratio: unknown key 'ratio' (did you mean 'min_ratio'?)",
    ]
    path, found = problems_in(tmp_path, text.replace("linaer", "step").replace("    ratio: 1\n", ""))
    assert found == [f"{path}:5: train.teacher_forcing.end_step: end_step (3) must be >= start_step (9)"]
    assert config.diff(config.resolve({}), cfg)["train.teacher_forcing.min_ratio"] == (1.0, 0.25)


def test_resolve_uses_given_lines():
    with pytest.raises(ConfigError) as info:
        config.resolve({"seed": "x", "train": {"max_steps": 0}}, "a.yaml", {("seed",): 4, ("train",): 6})
    assert single_line_problems(info.value) == [
        "a.yaml:4: seed: expected an integer, got string 'x'",
        "a.yaml:6: train.max_steps: must be >= 1, got 0",
    ]
    with pytest.raises(ConfigError) as info:
        config.resolve([1, 2])
    assert single_line_problems(info.value) == ["<config>: expected a mapping of sections, got a list"]


# --- YAML problems -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "seed: 1\ntrain:\n  max_steps: 3\n  max_steps: 4\n",
            "4: train.max_steps: duplicate key 'max_steps' (first on line 3)",
        ),
        (
            "seed: 1\ntrain: !!python/object:os.system {}\n",
            "2: train: Python/custom tags are not allowed (found !!python/object:os.system)",
        ),
        (
            "seed: !!python/name:os.system\n",
            "1: seed: Python/custom tags are not allowed (found !!python/name:os.system)",
        ),
        ("train:\n  device: !gpu cuda\n", "2: train.device: Python/custom tags are not allowed (found !gpu)"),
        ("seed: !!timestamp 2020-01-01\n", "1: seed: Python/custom tags are not allowed (found !!timestamp)"),
        ("seed: !!int abc\n", "1: seed: 'abc' is not a valid !!int"),
        ("train:\n\tmax_steps: 5\n", "2: tab character in indentation; use spaces"),
        (
            "seed: 1\ntrain: {max_steps: 5\nloss: 3\n",
            "3: invalid YAML: expected ',' or '}', but got ':' (while parsing a flow mapping)",
        ),
        ("seed: 1\nexperiment: a: b\n", "2: invalid YAML: mapping values are not allowed here"),
        ("- seed\n- 1\n", "1: expected a mapping of sections at the top level, got a list"),
        ("just text\n", "1: expected a mapping of sections at the top level, got string 'just text'"),
        ("seed: 1\n---\nseed: 2\n", "2: more than one YAML document (---) in the file; expected one"),
        ("base: &b 1\nseed: *b\n", "1: anchors and aliases (&a, *a) are not allowed; write the value out"),
        ("seed: 1\n3: x\n", "2: keys must be strings, got integer 3"),
        ("train:\n  true: 1\n", "2: train: keys must be strings, got boolean true"),
        ("seed: 1\nexperiment: a\x07\n", "2: character #x0007 is not allowed in YAML"),
    ],
)
def test_yaml_problems_have_file_and_line(tmp_path, text, problem):
    path, found = problems_in(tmp_path, text)
    assert found == [f"{path}:{problem}"]


def test_duplicates_in_one_file_are_all_reported(tmp_path):
    path, found = problems_in(tmp_path, "seed: 1\nseed: 2\ntrain: {device: cpu, device: cuda}\n")
    assert found == [
        f"{path}:2: seed: duplicate key 'seed' (first on line 1)",
        f"{path}:3: train.device: duplicate key 'device' (first on line 3)",
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n\n   # and another\n", "---\n"])
def test_empty_files(tmp_path, text):
    path, found = problems_in(tmp_path, text)
    assert found == [f"{path}: file is empty: expected a mapping of sections"]


def test_unreadable_sources(tmp_path):
    assert problems(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: file not found"]
    assert problems(tmp_path) == [f"{tmp_path}: is a directory, not a YAML file"]
    path, found = problems_in(tmp_path, b"seed: 1\nexperiment: caf\xe9\n")
    assert found == [f"{path}:2: file is not UTF-8 text (byte 0xe9)"]


def test_utf8_bom_is_accepted(tmp_path):
    assert config.load(write(tmp_path, "\ufeffseed: 3\n"))["seed"] == 3


def test_deep_nesting_is_a_config_error(tmp_path):
    path, found = problems_in(tmp_path, "seed: " + "[" * 10000 + "\n")
    assert found == [f"{path}:1: document is nested too deeply"]


def test_recursion_error_becomes_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_MAX_DEPTH", 10**9)
    path, found = problems_in(tmp_path, "seed: " + "[" * 10000 + "\n")
    assert found == [f"{path}: document is nested too deeply"]


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_apply_before_validation(tmp_path):
    cfg = config.load(write(tmp_path, FULL), ["optimizer.lr=3e-4", "train.max_steps=7", "model.num_layers=1"])
    assert cfg["optimizer"]["lr"] == 0.0003 and cfg["train"]["max_steps"] == 7
    assert cfg["model"]["num_layers"] == 1


def test_override_creates_a_missing_section_with_its_default_entry(tmp_path):
    cfg = config.load(write(tmp_path, "seed: 1\n"), ["model.d_model=128", "scheduler.name=constant"])
    assert cfg["model"]["name"] == "latent_transformer" and cfg["model"]["d_model"] == 128
    assert cfg["scheduler"] == {"name": "constant", "warmup_steps": 0}


@pytest.mark.parametrize(
    "override, problem",
    [
        ("optimizer.lr", "--set optimizer.lr: expected KEY=VALUE, e.g. --set optimizer.lr=3e-4"),
        ("=3", "--set =3: empty key; expected a dotted key such as optimizer.lr"),
        ("optimizer..lr=3", "--set optimizer..lr=3: empty key; expected a dotted key such as optimizer.lr"),
        (
            "seed=[1",
            "--set seed=[1: cannot parse value '[1': invalid YAML: expected ',' or ']', "
            "but got '<stream end>' (while parsing a flow sequence)",
        ),
        ("seed={a: 1}", "--set seed={a: 1}: value must be a single YAML scalar, got '{a: 1}'"),
        (
            "seed=!!python/object:x 1",
            "--set seed=!!python/object:x 1: Python/custom tags are not allowed (found !!python/object:x)",
        ),
        ("optimizer.lr=abc", "--set optimizer.lr=abc: optimizer.lr: expected a number, got string 'abc'"),
        ("optimizer.lrr=0.1", "--set optimizer.lrr=0.1: optimizer.lrr: unknown key 'lrr' (did you mean 'lr'?)"),
        ("optimzer.lr=0.1", "--set optimzer.lr=0.1: optimzer: unknown key 'optimzer' (did you mean 'optimizer'?)"),
        ("seed.value=3", "--set seed.value=3: seed: is integer 7, not a section; cannot set 'value' inside it"),
        (
            "train.device=yes",
            "--set train.device=yes: train.device: must be one of 'auto', 'cpu', 'cuda', 'mps', got 'yes'",
        ),
    ],
)
def test_bad_overrides(tmp_path, override, problem):
    assert problems(write(tmp_path, FULL), (override,)) == [problem]


def test_override_problems_follow_file_problems_in_flag_order(tmp_path):
    path, found = problems_in(tmp_path, "seed: x\n", ("train.max_steps=0", "optimizer.lr=-1"))
    assert found == [
        f"{path}:1: seed: expected an integer, got string 'x'",
        "--set train.max_steps=0: train.max_steps: must be >= 1, got 0",
        "--set optimizer.lr=-1: optimizer.lr: must be > 0, got -1",
    ]


def test_override_of_a_bad_file_value_clears_the_file_problem(tmp_path):
    assert config.load(write(tmp_path, "seed: x\n"), ["seed=3"])["seed"] == 3


def test_apply_overrides_on_a_resolved_config_copies_it():
    resolved = config.resolve({})
    changed = config.apply_overrides(resolved, ["train.max_steps=20", "model.name=simple_transformer"])
    assert resolved["train"]["max_steps"] == 10000 and resolved["model"]["name"] == "latent_transformer"
    assert changed["train"]["max_steps"] == 20
    with pytest.raises(ConfigError) as info:  # the old entry's parameters don't fit the new one
        config.resolve(changed, "config.yaml")
    assert single_line_problems(info.value) == [
        "config.yaml: model.num_latent: unknown key 'num_latent' (a parameter of latent_transformer only)",
        "config.yaml: model.latent_mode: unknown key 'latent_mode' (a parameter of latent_transformer only)",
        "config.yaml: model.chain: unknown key 'chain' (a parameter of latent_transformer and chain_transformer only)",
    ]


# --- dump, diff, errors --------------------------------------------------------------------------


def test_dump_load_round_trip(tmp_path):
    cfg = config.load(write(tmp_path, FULL), ["experiment='012'", "optimizer.weight_decay=0"])
    assert cfg["experiment"] == "012" and cfg["optimizer"]["eps"] == 1e-08
    text = config.dump(cfg)
    assert text.startswith("# yaml-language-server: $schema=")
    assert "eps: 1.0e-08\n" in text and 'experiment: "012"\n' in text and "operand_width: 4\n" in text
    again = config.load(write(tmp_path, text, "frozen.yaml"))
    assert again == cfg
    assert config.flatten(again) == config.flatten(cfg)
    for key, value in config.flatten(cfg).items():
        assert type(config.flatten(again)[key]) is type(value), key


def test_dump_round_trips_defaults_and_keeps_schema_order(tmp_path):
    cfg = config.load(write(tmp_path, "seed: 0\n", "defaults.yaml"))
    shuffled = dict(reversed(list(cfg.items())))
    text = config.dump(shuffled)
    sections = [line.split(":")[0] for line in text.splitlines()[1:] if not line.startswith(" ")]
    assert sections == SECTIONS
    assert config.load(write(tmp_path, text, "defaults2.yaml")) == {**cfg, "experiment": "defaults"}


def test_diff_lists_changed_leaves():
    old = config.resolve({})
    new = config.apply_overrides(old, ["optimizer.lr=0.001", "train.device=cpu"])
    assert config.diff(old, new) == {"optimizer.lr": (0.0003, 0.001), "train.device": ("auto", "cpu")}
    assert config.diff(old, old) == {}
    assert config.diff({"a": {"b": 1}}, {"a": {"b": True}, "c": 2}) == {"a.b": (1, True), "c": (None, 2)}


def test_config_error_pickles():
    err = ConfigError(["a.yaml:1: seed: bad", "line\nbreak"])
    assert err.problems[1] == "line\\nbreak"
    assert pickle.loads(pickle.dumps(err)).problems == err.problems


def test_latent_forcing_defaults_to_off_and_needs_supervised_recurrent_latents(tmp_path):
    train = config.load(write(tmp_path, "seed: 1\n"))["train"]
    assert train["latent_forcing"] == {"schedule": "linear", "start_step": 0, "end_step": 0, "min_ratio": 0.0}
    assert not train_rules.latent_forcing_active(train)
    good = (
        "model: {name: latent_transformer, num_latent: 3, latent_mode: recurrent}\n"
        "loss: {name: combined, latent_supervision_weight: 2}\n"
        "train:\n  latent_forcing: {start_step: 100, end_step: 200}\n"
    )
    assert train_rules.latent_forcing_active(config.load(write(tmp_path, good))["train"])
    path, found = problems_in(tmp_path, good.replace("recurrent", "pause"))
    assert found == [
        f"{path}:4: train.latent_forcing: latent forcing needs a latent_transformer with latent_mode recurrent, "
        "num_latent >= 2 and loss.latent_supervision_weight > 0 (model is latent_transformer, latent_mode pause)"
    ]
    path, found = problems_in(tmp_path, good.replace("latent_supervision_weight: 2", "accuracy_weight: 1"))
    assert len(found) == 1 and "latent_supervision_weight 0.0" in found[0]
    path, found = problems_in(tmp_path, good.replace("start_step: 100", "start_step: 300"))
    assert found == [f"{path}:4: train.latent_forcing.end_step: end_step (200) must be >= start_step (300)"]
    off = config.load(write(tmp_path, "train:\n  latent_forcing: {min_ratio: 0.0}\n"))
    assert not train_rules.latent_forcing_active(off["train"])  # an explicit off needs nothing


@pytest.mark.parametrize(
    "text, loggers",
    [
        ("train.loggers=[tensorboard]", ["tensorboard"]),
        ("train.loggers=[tensorboard, mlflow]", ["tensorboard", "mlflow"]),
        ('train.loggers=["tensorboard",wandb]', ["tensorboard", "wandb"]),
        ("train.loggers=[]", []),
    ],
)
def test_a_flow_list_in_set_is_read_item_by_item(text, loggers):
    """Issue 22 item 16: the README allows overriding train.loggers, which --set refused as no scalar."""
    assert config.parse_override(text) == ("train.loggers", loggers)
    if loggers:
        assert config.load(SMOKE, [text])["train"]["loggers"] == loggers


def test_a_list_inside_a_list_in_set_is_refused():
    with pytest.raises(ConfigError, match=r"--set train.loggers=\[\[a\]\]: value must be a single YAML scalar"):
        config.parse_override("train.loggers=[[a]]")


def test_model_chain_belongs_to_the_chain_and_supervised_latent_models_only(tmp_path):
    path, found = problems_in(tmp_path, "model:\n  name: simple_transformer\n  chain: partial_products\n")
    owners = "latent_transformer and chain_transformer"
    assert found == [f"{path}:3: model.chain: unknown key 'chain' (a parameter of {owners} only)"]
    path, found = problems_in(tmp_path, "model:\n  name: latent_transformer\n  chain: partial_products\n")
    assert found == [
        f"{path}:3: model.chain: partial_products names the steps supervised latents hold: "
        "it needs loss.latent_supervision_weight > 0"
    ]
    text = "model:\n  name: latent_transformer\n  num_latent: 7\n  chain: partial_products\n"
    valid = config.load(write(tmp_path, text + "loss:\n  name: combined\n  latent_supervision_weight: 1.0\n"))
    assert valid["model"]["chain"] == "partial_products"
    valid = config.load(
        write(
            tmp_path,
            text.replace("_products", "_products_only") + "loss:\n  name: combined\n  latent_supervision_weight: 1.0\n",
        )
    )
    assert valid["model"]["chain"] == "partial_products_only"
    path, found = problems_in(tmp_path, "model:\n  name: chain_transformer\n  chain: partial_products_only\n")
    assert len(found) == 1 and found[0].startswith(f"{path}:3: model.chain: ")  # latents' chain, not a written one
    path, found = problems_in(tmp_path, "model:\n  name: chain_transformer\n  chain: icot\n")
    assert len(found) == 1 and found[0].startswith(f"{path}:3: model.chain: ") and "partial_products" in found[0]


def test_weight_average_defaults_to_off_and_must_start_before_training_ends(tmp_path):
    train = config.load(write(tmp_path, "seed: 1\n"))["train"]
    assert train["weight_average"] == {"decay": 0.0, "start_step": 0}
    text = "train:\n  max_steps: 500\n  weight_average: {decay: 0.99, start_step: 500}\n"
    path, found = problems_in(tmp_path, text)
    assert found == [
        f"{path}:3: train.weight_average.start_step: the average starts at update 500 and training ends at "
        "update 500: it would average nothing (start_step must be < max_steps)"
    ]
    assert config.load(write(tmp_path, text.replace("start_step: 500", "start_step: 499")))["train"]["weight_average"]
    config.load(write(tmp_path, text.replace("decay: 0.99", "decay: 0.0")))  # off: nothing to start
    path, found = problems_in(tmp_path, text.replace("decay: 0.99", "decay: 1"))
    assert len(found) == 1 and found[0].startswith(f"{path}:3: train.weight_average.decay:") and "< 1" in found[0]
