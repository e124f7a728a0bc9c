"""`keys`: every config key the schema knows, with its type, default, bounds and description."""

from support import SMOKE

from latentrun.cli import main
from latentrun.config import flatten, load
from latentrun.core import keys


def test_every_key_of_a_resolved_config_is_listed_with_a_description():
    listed = {k.key: k for k in keys.schema_keys()}
    resolved = flatten(load(SMOKE))
    assert set(resolved) <= set(listed), set(resolved) - set(listed)
    assert all(k.description for k in listed.values()), [k.key for k in listed.values() if not k.description]


def test_type_default_bounds_and_the_entries_that_take_a_key():
    listed = {k.key: k for k in keys.schema_keys()}
    lr = listed["optimizer.lr"]
    assert lr.type == "float" and lr.bounds.startswith(">") and lr.default is not None
    assert listed["model.num_latent"].entries == ("latent_transformer",)  # not every model takes it
    assert listed["model.d_model"].entries == ()  # every model does
    assert listed["train.teacher_forcing.start_step"].type == "int"  # nested sections are walked
    assert listed["model.name"].type.startswith("one of ")


def test_keys_command_prints_all_or_one_section(capsys):
    assert main(["keys"]) == 0
    everything = capsys.readouterr().out
    assert "optimizer.lr" in everything and "train.max_steps" in everything
    assert main(["keys", "model"]) == 0
    model = capsys.readouterr().out
    lines = [line for line in model.splitlines() if not line.startswith(" ")]
    assert lines and all(line.startswith("model.") for line in lines)
    assert "default 384" in model and "Width of the residual stream." in model
    assert main(["keys", "modle"]) == 2
