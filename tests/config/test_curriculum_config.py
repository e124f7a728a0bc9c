"""The curriculum section: defaults, and the rule that only a chain model moves along a chain."""

import pytest
from support import SMOKE, SMOKE_CHAIN

from latentrun import config
from latentrun.config import ConfigError


def test_curriculum_defaults_to_none_and_fills_each_entry():
    assert config.load(SMOKE)["curriculum"] == {"name": "none"}
    resolved = config.load(SMOKE_CHAIN, ["curriculum.name=coconut"])
    assert resolved["curriculum"] == {
        "name": "coconut",
        "stage_steps": 1000,
        "thoughts_per_step": 1,
        "reset_optimizer": True,
    }
    resolved = config.load(SMOKE_CHAIN, ["curriculum.name=internalize"])
    assert resolved["curriculum"] == {
        "name": "internalize",
        "stage_steps": 1000,
        "tokens_per_stage": 2,
        "reset_optimizer": True,
        "examples_per_token": None,  # the stage schedule, not Deng's rate, unless asked for
        "removal_smoothing": None,
    }


def test_a_curriculum_needs_the_chain_model(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model:\n  name: simple_transformer\ncurriculum:\n  name: coconut\n  stage_steps: 10\n")
    with pytest.raises(ConfigError) as error:
        config.load(path)
    assert error.value.problems == [
        f"{path}:4: curriculum.name: curriculum coconut moves along a written chain: it needs model "
        "chain_transformer (model is simple_transformer)"
    ]


@pytest.mark.parametrize(
    "override,problem",
    [
        ("curriculum.thoughts_per_step=4", "curriculum.thoughts_per_step: must be <= 3, got 4"),
        ("curriculum.stage_steps=0", "curriculum.stage_steps: must be >= 1, got 0"),
        ("curriculum.tokens_per_stage=2", "unknown key 'tokens_per_stage' (a parameter of internalize only)"),
    ],
)
def test_curriculum_keys_are_checked(override, problem):
    with pytest.raises(ConfigError) as error:
        config.load(SMOKE_CHAIN, ["curriculum.name=coconut", override])
    assert any(problem in line for line in error.value.problems), error.value.problems
