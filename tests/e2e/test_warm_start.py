"""Warm start (init.from): a new run begins from another run's weights with a fresh optimizer and
schedule, finds or trains the stage an experiment file names, records its source, and resumes
bitwise like any run."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from helpers import FAST, assert_states_equal, run_cli, step_file
from support import SMOKE, SMOKE_CHAIN

from latentrun.runs import checkpoint_file as checkpoint

STAGE = SMOKE_CHAIN.read_text()
# Internalization of the smoke chain (9 tokens, 4 a stage every 5 updates) from the stage's best.pt.
DIRECT = (
    STAGE.replace("experiment: smoke_chain", "experiment: direct")
    .replace("curriculum:\n  name: none", "curriculum:\n  name: internalize\n  stage_steps: 5\n  tokens_per_stage: 4")
    .replace("max_steps: 40", "max_steps: 20")
    + "init:\n  from: stage.yaml\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def runs_of(runs_dir: Path, experiment: str) -> list[Path]:
    return sorted(p for p in runs_dir.iterdir() if p.name.startswith(f"{experiment}-"))


def run_made_by(runs_dir: Path, experiment: str, *args) -> Path:
    """The one `experiment` run that `run_cli(*args)` created in `runs_dir`. Not the last by name: two
    runs started in the same second sort by their random suffix."""
    before = set(runs_of(runs_dir, experiment))
    assert run_cli(*args) == 0
    (created,) = set(runs_of(runs_dir, experiment)) - before
    return created


def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> tuple[Path, Path]:
    """(experiments folder, runs dir) after one `run.py direct.yaml`: the stage trained, then the direct run."""
    folder = tmp_path_factory.mktemp("experiments")
    write(folder, "stage.yaml", STAGE.replace("experiment: smoke_chain", "experiment: stage"))
    direct = write(folder, "direct.yaml", DIRECT)
    runs_dir = tmp_path_factory.mktemp("runs")
    assert run_cli(direct, "--runs-dir", runs_dir, *FAST) == 0
    return folder, runs_dir


@pytest.fixture(scope="module")
def straight(staged) -> Path:
    """The direct run the fixture `staged` trained to its end, whatever later tests add beside it."""
    _, runs_dir = staged
    (run,) = runs_of(runs_dir, "direct")
    return run


def test_an_experiment_file_source_is_trained_first_then_recorded(staged, straight):
    folder, runs_dir = staged
    (stage,), direct = runs_of(runs_dir, "stage"), straight
    assert meta(stage)["status"] == meta(direct)["status"] == "finished"
    best = stage / "checkpoints" / "best.pt"
    assert meta(direct)["init"] == {
        "from": str(folder / "stage.yaml"),
        "run": stage.name,
        "path": str(stage.resolve()),
        "checkpoint": "best",
        "step": torch.load(best, weights_only=True)["step"],
        "sha256": hashlib.sha256(best.read_bytes()).hexdigest(),
    }


def test_the_new_run_starts_from_the_source_weights_with_a_fresh_optimizer(staged, tmp_path):
    """Stopped after its first update, the run's weights moved from the source's by at most one
    AdamW step at the first learning rate (far less than from a fresh initialisation), and its
    optimizer has taken one step."""
    folder, runs_dir = staged
    (stage,) = runs_of(runs_dir, "stage")
    newest = run_made_by(runs_dir, "direct", folder / "direct.yaml", "--runs-dir", runs_dir, *FAST, "--stop-at", "1")
    state = checkpoint.load(step_file(newest, 1))
    source = torch.load(stage / "checkpoints" / "best.pt", weights_only=True)["model"]
    lr = 1e-3 / 5  # warmup_cosine, 5 warmup steps: update 1 runs at a fifth of the peak
    for name, weights in state["model"].items():
        if weights.is_floating_point():
            assert (weights - source[name]).abs().max() <= 1.01 * lr + 1e-7, name
    assert {int(v["step"]) for v in state["optimizer"]["state"].values()} == {1}
    assert state["step"] == 1 and len(runs_of(runs_dir, "stage")) == 1  # the stage was reused, not retrained


def test_a_warm_started_run_resumes_bitwise(staged, straight, tmp_path):
    folder, runs_dir = staged
    stopped_dir = tmp_path / "runs"
    stopped_dir.mkdir()
    for stage_run in runs_of(runs_dir, "stage"):  # the same finished stage, so both start from one best.pt
        (stopped_dir / stage_run.name).symlink_to(stage_run.resolve())
    assert run_cli(folder / "direct.yaml", "--runs-dir", stopped_dir, *FAST, "--stop-at", "8") == 0
    (resumed,) = runs_of(stopped_dir, "direct")
    assert run_cli("--resume", resumed) == 0
    assert_states_equal(checkpoint.load(step_file(straight, 20)), checkpoint.load(step_file(resumed, 20)))


def test_a_run_id_source_with_a_step_checkpoint(staged, tmp_path):
    folder, runs_dir = staged
    (stage,) = runs_of(runs_dir, "stage")
    direct = write(
        folder, "by_id.yaml", DIRECT.replace("from: stage.yaml", f"from: {stage.name}\n  checkpoint: step_20")
    )
    newest = run_made_by(runs_dir, "direct", direct, "--runs-dir", runs_dir, *FAST, "--stop-at", "1")
    assert meta(newest)["init"]["run"] == stage.name and meta(newest)["init"]["step"] == 20


@pytest.mark.parametrize(
    "init,message",
    [
        ("from: no-such-run", "init.from: no-such-run: not a run directory"),
        ("from: stage.yaml\n  checkpoint: step_7", "has no checkpoint of step 7 (kept: step_20, step_30, step_40)"),
        ("from: wide.yaml", "does not fit this model"),
        ("from: loop_a.yaml", "the stages name each other in a cycle: loop_a.yaml -> loop_b.yaml -> loop_a.yaml"),
        ("from: missing.yaml", "init.from: no such experiment file"),
    ],
)
def test_a_missing_or_incompatible_source_is_a_one_line_error(staged, tmp_path, capsys, init, message):
    folder, runs_dir = staged
    wide = STAGE.replace("experiment: smoke_chain", "experiment: wide").replace("d_model: 32", "d_model: 64")
    wide = wide.replace("max_steps: 40", "max_steps: 10")
    write(folder, "wide.yaml", wide)
    write(
        folder,
        "loop_a.yaml",
        DIRECT.replace("experiment: direct", "experiment: loop_a").replace("stage.yaml", "loop_b.yaml"),
    )
    write(
        folder,
        "loop_b.yaml",
        DIRECT.replace("experiment: direct", "experiment: loop_b").replace("stage.yaml", "loop_a.yaml"),
    )
    direct = write(folder, "bad.yaml", DIRECT.replace("from: stage.yaml", init))
    before = sorted(p.name for p in runs_dir.iterdir())
    capsys.readouterr()
    assert run_cli(direct, "--runs-dir", runs_dir, *FAST) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
    created = set(p.name for p in runs_dir.iterdir()) - set(before)
    assert all(name.startswith("wide-") for name in created)  # only the wide stage, trained to be refused


def test_an_unfinished_stage_is_resumed_not_trained_again(tmp_path):
    folder, runs_dir = tmp_path / "experiments", tmp_path / "runs"
    folder.mkdir()
    stage = write(folder, "stage.yaml", STAGE.replace("experiment: smoke_chain", "experiment: stage"))
    direct = write(folder, "direct.yaml", DIRECT)
    assert run_cli(stage, "--runs-dir", runs_dir, *FAST, "--stop-at", "10") == 0  # what a SIGTERM would leave
    assert run_cli(direct, "--runs-dir", runs_dir, *FAST) == 0
    (stage_run,) = runs_of(runs_dir, "stage")
    assert [event["event"] for event in meta(stage_run)["history"]] == ["start", "resume"]
    assert meta(stage_run)["status"] == "finished" and meta(stage_run)["step"] == 40
    (direct_run,) = runs_of(runs_dir, "direct")
    assert meta(direct_run)["init"]["run"] == stage_run.name


def test_a_run_trained_with_latent_forcing_is_fine_tuned_without_it(tmp_path, capsys):
    """A second stage without forcing or supervision starts from a forced, supervised run: the
    source's teacher embedding and probe are left behind (said in the log), everything else loads."""
    smoke = SMOKE.read_text().replace("max_steps: 40", "max_steps: 10").replace("eval_every: 20", "eval_every: 10")
    forced = smoke.replace("experiment: smoke", "experiment: forced").replace(
        "  accuracy_weight: 0.5\n", "  accuracy_weight: 0.5\n  latent_supervision_weight: 1.0\n"
    ).replace("  num_latent: 2\n", "  num_latent: 2\n  latent_mode: recurrent\n") + (
        "  latent_forcing: {start_step: 3, end_step: 6}\n"
    )
    tuned = forced.replace("experiment: forced", "experiment: tuned").split("loss:")[0] + (
        "loss:" + smoke.split("loss:")[1] + "init:\n  from: forced.yaml\n"
    )
    write(tmp_path, "forced.yaml", forced)
    tuned_file = write(tmp_path, "tuned.yaml", tuned)
    runs_dir = tmp_path / "runs"
    capsys.readouterr()
    assert run_cli(tuned_file, "--runs-dir", runs_dir, *FAST) == 0
    assert "left behind: probe.weight, probe.bias, latent_teacher.weight" in capsys.readouterr().err
    (source,), (tuned_run,) = runs_of(runs_dir, "forced"), runs_of(runs_dir, "tuned")
    assert meta(tuned_run)["init"]["run"] == source.name and meta(tuned_run)["status"] == "finished"
    weights = torch.load(source / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert {"latent_teacher.weight", "probe.weight"} <= set(weights)
    assert not {"latent_teacher.weight", "probe.weight"} & set(checkpoint.load(step_file(tuned_run, 10))["model"])
