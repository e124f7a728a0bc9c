"""`extends: base.yaml`: a file states what differs from its base; what is validated, printed and
frozen is the resolved whole, and every error still names the file and line it was written at."""

import textwrap
from pathlib import Path

import pytest
from support import EXPERIMENTS

from latentrun import cli, config
from latentrun.config import ConfigError

FAMILIES = sorted(EXPERIMENTS.glob("compare_*.yaml")) + sorted(EXPERIMENTS.glob("lengen_*.yaml"))
ROOT_OF_FAMILIES = "compare_2digit_simple.yaml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.parametrize("path", FAMILIES, ids=[p.name for p in FAMILIES])
def test_each_family_file_resolves_byte_for_byte_as_before_it_was_composed(path):
    """tests/config/written/ holds each file as it was written out in full before composition
    (main at 19463bf); resolved with today's schema, both must print the same `validate` output."""
    written = Path(__file__).parent / "written" / path.name
    assert written.is_file(), (
        f"{path.name} is a family file: put it, written out in full without extends:, at {written}"
    )
    assert "extends" not in written.read_text()
    assert config.dump(config.load(path)) == config.dump(config.load(written))


def test_the_families_state_only_their_differences():
    for path in FAMILIES:
        raw = path.read_text()
        if path.name == ROOT_OF_FAMILIES:
            assert "extends:" not in raw
            continue
        assert "\nextends: " in raw, (
            f"{path.name} must state only what differs from a sibling: begin it with extends: <sibling>.yaml"
        )
        assert "  batch_size: 128" not in raw, f"{path.name} repeats its base's batch size"


@pytest.fixture
def family(tmp_path):
    base = write(
        tmp_path / "base.yaml",
        """
        experiment: base
        seed: 7
        model:
          name: latent_transformer
          d_model: 32
          num_layers: 2
          num_heads: 2
          num_latent: 2
        train:
          max_steps: 40
          loggers: [tensorboard]
        """,
    )
    child = write(
        tmp_path / "variants" / "child.yaml",
        """
        extends: ../base.yaml
        model:
          num_latent: 3
        train:
          loggers: []
        """,
    )
    return base, child


def test_a_child_merges_key_by_key_and_replaces_lists(family):
    _, child = family
    resolved = config.load(child)
    assert resolved["experiment"] == "child"  # a name is never inherited: the file's stem
    assert resolved["seed"] == 7
    assert (resolved["model"]["d_model"], resolved["model"]["num_latent"]) == (32, 3)
    assert resolved["train"]["max_steps"] == 40 and resolved["train"]["loggers"] == []
    assert "extends" not in resolved


def test_errors_name_the_file_and_line_where_the_bad_value_was_written(family):
    base, child = family
    base.write_text(base.read_text().replace("d_model: 32", "d_model: -1"))
    child.write_text(child.read_text().replace("num_latent: 3", "num_latnt: 3"))
    with pytest.raises(ConfigError) as caught:
        config.load(child)
    assert caught.value.problems == [  # the file given first, then its base
        f"{child}:3: model.num_latnt: unknown key 'num_latnt' (did you mean 'num_latent'?)",
        f"{base}:5: model.d_model: must be >= 8, got -1",
    ]


def test_a_set_overrides_the_resolved_whole_and_cannot_name_a_base(family):
    _, child = family
    assert config.load(child, ["model.num_latent=5"])["model"]["num_latent"] == 5
    with pytest.raises(ConfigError, match="--set extends=base.yaml: extends: names a base file"):
        config.load(child, ["extends=base.yaml"])


def test_validate_prints_the_resolved_whole(family, capsys):
    _, child = family
    assert cli.main(["validate", str(child)]) == 0
    out = capsys.readouterr().out
    assert "extends" not in out
    assert "  d_model: 32\n" in out and "  num_latent: 3\n" in out and "seed: 7\n" in out


def _one_error(capsys, *args: str) -> str:
    assert cli.main(list(args)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


def test_a_cycle_is_one_line_and_exit_2(tmp_path, capsys):
    first = write(tmp_path / "a.yaml", "extends: b.yaml\nseed: 1\n")
    write(tmp_path / "b.yaml", "seed: 2\nextends: a.yaml\n")
    err = _one_error(capsys, "validate", str(first))
    assert (
        err
        == f"error: {tmp_path / 'b.yaml'}:2: extends: a.yaml is already being read: a cycle (a.yaml -> b.yaml -> a.yaml)\n"
    )
    write(tmp_path / "self.yaml", "extends: ./self.yaml\n")
    assert "a cycle (self.yaml -> self.yaml)" in _one_error(capsys, "validate", str(tmp_path / "self.yaml"))


def test_a_missing_or_malformed_base_is_one_line_and_exit_2(tmp_path, capsys):
    missing = write(tmp_path / "m.yaml", "seed: 1\nextends: nowhere.yaml\n")
    err = _one_error(capsys, "validate", str(missing))
    assert (
        err
        == f"error: {missing}:2: extends: no such base file 'nowhere.yaml' (looked for {tmp_path / 'nowhere.yaml'})\n"
    )
    listed = write(tmp_path / "l.yaml", "extends: [a.yaml, b.yaml]\n")
    assert "expected the path of a base config file, got a list" in _one_error(capsys, "validate", str(listed))
    write(tmp_path / "broken.yaml", "seed: [\n")
    child = write(tmp_path / "c.yaml", "extends: broken.yaml\n")
    assert f"error: {tmp_path / 'broken.yaml'}:" in _one_error(capsys, "validate", str(child))


def test_a_chain_of_bases_has_a_bound(tmp_path, capsys):
    for index in range(20):
        write(tmp_path / f"f{index}.yaml", f"extends: f{index + 1}.yaml\n")
    write(tmp_path / "f20.yaml", "seed: 1\n")
    assert "more than 16 files extend one another" in _one_error(capsys, "validate", str(tmp_path / "f0.yaml"))


def test_a_base_files_paths_are_relative_to_the_base(tmp_path):
    write(tmp_path / "bases" / "held.txt", "3*4\n")
    write(tmp_path / "held.txt", "5*6\n")
    write(tmp_path / "bases" / "base.yaml", "dataset:\n  name: multiplication\n  exclude: [held.txt]\n")
    child = write(tmp_path / "child.yaml", "extends: bases/base.yaml\nseed: 3\n")
    assert config.load(child)["dataset"]["exclude"] == [str(tmp_path / "bases" / "held.txt")]
    # a --set writes relative to the experiment file given, as without a base
    assert config.load(child, ["dataset.exclude=[held.txt]"])["dataset"]["exclude"] == [str(tmp_path / "held.txt")]
