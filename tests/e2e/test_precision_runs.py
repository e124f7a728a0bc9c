"""Mixed precision through whole runs: bf16 autocast and fp16 loss scaling on the CPU resume bitwise."""

import json

import pytest
from helpers import assert_states_equal, final_state, only_run, run_cli, scalars

from latentrun.train import precision

SHORT = ("--set", "train.max_steps=20")  # half the smoke run: these tests only need a stop and a resume


def trainer_state(run_dir):
    """The checkpoint's trainer dict without wall-clock time, the one thing a resume may change."""
    return {key: value for key, value in final_state(run_dir, 20)["trainer"].items() if key != "elapsed_seconds"}


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_stop_and_resume_in_reduced_precision_is_bitwise_equal(name, smoke, tmp_path):
    setting = f"train.precision={name}"
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *SHORT, "--set", setting) == 0
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *SHORT, "--set", setting, "--stop-at", 10) == 0
    assert run_cli("--resume", only_run(tmp_path / "resumed")) == 0
    straight, resumed = only_run(tmp_path / "straight"), only_run(tmp_path / "resumed")

    assert_states_equal(final_state(straight, 20), final_state(resumed, 20))
    assert trainer_state(straight) == trainer_state(resumed)
    assert final_state(resumed, 20)["trainer"]["precision"] == name
    scaler = final_state(resumed, 20)["trainer"]["grad_scaler"]
    assert bool(scaler) == (name == "fp16"), "only fp16 keeps GradScaler state"
    assert scalars(straight, "train/loss") == scalars(resumed, "train/loss")
    meta = json.loads((straight / "meta.json").read_text())["precision"]
    assert meta["resolved"] == name and meta["requested"] == name


def test_auto_records_its_choice_and_a_resume_keeps_it_without_probing(smoke, tmp_path, monkeypatch):
    assert run_cli(smoke, "--runs-dir", tmp_path, *SHORT, "--set", "train.precision=auto", "--stop-at", 10) == 0
    run_dir = only_run(tmp_path)
    meta = json.loads((run_dir / "meta.json").read_text())["precision"]
    assert meta["requested"] == "auto" and set(meta["probe_seconds"]) == {"fp32", "bf16"}
    assert final_state(run_dir, 10)["trainer"]["precision"] == meta["resolved"]

    def probe_again(*args):
        raise AssertionError("a resumed auto run must reuse its recorded precision")

    monkeypatch.setattr(precision, "probe_seconds", probe_again)
    assert run_cli("--resume", run_dir, "--set", "train.max_steps=12") == 0
    assert final_state(run_dir, 12)["trainer"]["precision"] == meta["resolved"]
