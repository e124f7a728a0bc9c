"""`probe` on tiny trained runs of every model kind, its one-line errors, and `compare --probes`."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from support import EXPERIMENTS

from latentrun.cli import main
from latentrun.runs import checkpoint_file

SHORT = ["--set", "train.max_steps=6", "--set", "train.eval_every=6", "--set", "train.num_threads=1"]
KINDS = {
    "simple": ("smoke_simple.yaml", []),
    "pause": ("smoke.yaml", []),
    "recurrent_supervised": ("smoke.yaml", ["model.latent_mode=recurrent", "loss.latent_supervision_weight=1"]),
    "chain_of_thought": ("smoke_chain.yaml", []),
    # stage 1 of 2 at step 6: one continuous thought, then the second written step
    "coconut": ("smoke_chain.yaml", ["curriculum.name=coconut", "curriculum.stage_steps=4"]),
    # stage 2 at step 6: eight of the nine chain tokens removed
    "internalize": (
        "smoke_chain.yaml",
        ["curriculum.name=internalize", "curriculum.stage_steps=2", "curriculum.tokens_per_stage=4"],
    ),
    # internalization warm-started from the chain-of-thought run's best.pt (init.from)
    "warm_started": (
        "smoke_chain.yaml",
        ["curriculum.name=internalize", "curriculum.stage_steps=2", "curriculum.tokens_per_stage=4"],
    ),
}
# Position classes each run's best.pt has: (latent or thought positions, written chain tokens)
EXPECTED = {
    "simple": (0, 0),
    "pause": (2, 0),
    "recurrent_supervised": (2, 0),
    "chain_of_thought": (0, 9),
    "coconut": (1, 5),
    "internalize": (0, 1),
    "warm_started": (0, 1),
}


def cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    runs = {}
    for kind, (file, overrides) in KINDS.items():
        runs_dir = tmp_path_factory.mktemp(kind)
        if kind == "warm_started":
            overrides = [*overrides, f"init.from={runs['chain_of_thought']}"]
        sets = [part for override in overrides for part in ("--set", override)]
        assert cli(EXPERIMENTS / file, "--runs-dir", runs_dir, *SHORT, *sets) == 0
        (runs[kind],) = [path for path in runs_dir.iterdir() if path.is_dir()]
    return runs


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_kind_is_probed(kind, trained, capsys):
    run_dir = trained[kind]
    capsys.readouterr()
    assert cli("probe", run_dir, "--samples", "60") == 0
    out = capsys.readouterr().out
    assert f"wrote {run_dir / 'probe.json'}" in out and "running_sum" in out
    document = json.loads((run_dir / "probe.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert document["run"] == run_dir.name and document["checkpoint"] == "best.pt" and document["step"] == 6
    assert document["test_exact_match"] == meta["test"]["exact_match"]
    assert document["problems"] == 60 and document["held_out_problems"] == 12
    assert [layer["name"] for layer in document["layers"]] == ["embeddings", "block 1", "block 2"]
    classes = [p["class"] for p in document["positions"]]
    latents, chain = EXPECTED[kind]
    assert classes.count("latent") == latents and classes.count("chain") == chain
    assert classes.count("prompt") == {"smoke.yaml": 6, "smoke_simple.yaml": 6}.get(KINDS[kind][0], 8)
    assert [t["name"] for t in document["targets"]] == ["running_sum", "column_sum", "carry", "partial_product"]
    for target in document["targets"]:
        assert len(target["mean"]) == 3 and all(len(row) == len(classes) for row in target["mean"])
        if target["metric"] == "accuracy":
            assert all(0.0 <= value <= 1.0 for row in target["mean"] for value in row)
    if kind == "warm_started":
        assert meta["init"]["run"] == trained["chain_of_thought"].name
    assert (run_dir / "probe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "probe/heatmap" in images(run_dir)


def test_a_probe_can_be_narrowed(trained):
    run_dir = trained["coconut"]
    args = ("--targets", "carry", "--layers", "0", "2", "--positions", "latent", "answer", "--samples", "40")
    assert cli("probe", run_dir, *args, "--split", "val") == 0
    document = json.loads((run_dir / "probe.json").read_text())
    assert [t["name"] for t in document["targets"]] == ["carry"] and document["split"] == "val"
    assert [layer["index"] for layer in document["layers"]] == [0, 2]
    assert {p["class"] for p in document["positions"]} == {"latent", "answer"}


@pytest.mark.parametrize(
    ("kind", "args", "message"),
    [
        ("simple", ("--targets", "carries"), "unknown target 'carries' (did you mean 'carry'?)"),
        (
            "simple",
            ("--positions", "latent"),
            "this simple_transformer has no latent positions (it has prompt, answer)",
        ),
        ("internalize", ("--positions", "thought"), "unknown position class 'thought'"),
        ("chain_of_thought", ("--positions", "latent"), "this chain_transformer has no thought positions"),
        ("pause", ("--layers", "3"), "--layers 3: this model has layers 0 (embeddings) to 2"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(kind, args, message, trained, capsys):
    capsys.readouterr()
    assert cli("probe", trained[kind], *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_run_with_no_checkpoint_is_one_line_and_exit_2(trained, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.yaml", "meta.json"):
        shutil.copy(trained["simple"] / name, bare / name)
    capsys.readouterr()
    assert cli("probe", bare) == 2
    err = capsys.readouterr().err
    assert "no checkpoint yet" in err and len(err.strip().splitlines()) == 1


def test_compare_puts_probe_pictures_side_by_side(trained, tmp_path, capsys):
    runs = [trained["simple"], trained["pause"]]
    for run_dir in runs:
        assert cli("probe", run_dir, "--samples", "40", "--targets", "column_sum", "carry") == 0
    assert cli("compare", *runs, "--out", tmp_path / "out", "--probes") == 0
    assert (tmp_path / "out" / "probes.png").read_bytes()[:4] == b"\x89PNG"
    (trained["pause"] / "probe.json").unlink()
    capsys.readouterr()
    assert cli("compare", *runs, "--out", tmp_path / "again", "--probes") == 2
    assert "no readable probe.json; run `probe" in capsys.readouterr().err


def test_the_probed_checkpoint_is_the_layout_the_run_ended_in(trained):
    """The position classes come from the layout saved with best.pt, not from the config."""
    run_dir = trained["coconut"]
    layout = checkpoint_file.load(run_dir / "checkpoints" / "best.pt")["model"]["layout"]
    assert torch.equal(layout, torch.tensor([1, 4]))


def images(run_dir: Path) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator.Tags()["images"]
