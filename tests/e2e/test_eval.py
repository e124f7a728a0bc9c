"""`eval` and `predict` on runs of every model: simple, pause latents, recurrent latents with step supervision."""

import json

import pytest
from helpers import only_run, run_cli, scalars
from support import SMOKE

MODELS = {
    "simple": [],
    "pause": [],
    "recurrent_supervised": ["--set", "model.latent_mode=recurrent", "--set", "loss.latent_supervision_weight=1"],
}


@pytest.fixture(scope="module", params=list(MODELS))
def trained_run(request, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp(request.param)
    experiment = SMOKE
    if request.param == "simple":  # the smoke model without its latents
        experiment = runs_dir / "smoke.yaml"
        text = SMOKE.read_text().replace("name: latent_transformer", "name: simple_transformer")
        experiment.write_text(text.replace("  num_latent: 2\n", ""))
    overrides = MODELS[request.param] + ["--set", "train.max_steps=6", "--set", "train.eval_every=6"]
    assert run_cli(experiment, "--runs-dir", runs_dir / "runs", *overrides) == 0
    return request.param, only_run(runs_dir / "runs")


def test_eval_writes_the_grid_and_predict_answers(trained_run, capsys):
    kind, run_dir = trained_run
    capsys.readouterr()
    assert run_cli("eval", run_dir, "--samples", "30") == 0
    out = capsys.readouterr().out
    assert "a\\b" in out and "n/a" in out  # 3 digits (trained + 1) do not fit operand_width 2
    record = json.loads((run_dir / "eval" / "grid.json").read_text())
    assert record["max_digits"] == 3 and record["step"] == 6 and len(record["cells"]) == 9
    measured = [c for c in record["cells"] if c["encodable"]]
    assert len(measured) == 4 and all(0.0 <= c["exact_match"] <= 1.0 and c["trained_share"] > 0 for c in measured)
    assert (run_dir / "eval" / "grid.png").stat().st_size > 0
    assert run_cli("predict", run_dir, "37*45", "9*9", "--bare") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.isdigit() for line in lines)
    if kind == "recurrent_supervised":
        assert len(scalars(run_dir, "train/latent_loss")) == 6 and len(scalars(run_dir, "val/latent_accuracy")) == 1
        # each latent's rate, named after the step it holds (2-digit operands: s1, then the product)
        assert len(scalars(run_dir, "val/latent_accuracy/01_s1")) == 1
        assert len(scalars(run_dir, "test/latent_accuracy/02_product")) == 1
        split = json.loads((run_dir / "eval" / "test.json").read_text())
        rates = [split["latent_accuracy/01_s1"], split["latent_accuracy/02_product"]]
        assert split["latent_accuracy"] == pytest.approx(sum(rates) / 2)
        assert f"latents read right (latent_accuracy {split['latent_accuracy']:.4f}): s1 {rates[0]:.4f}" in out


def test_eval_usage_errors_exit_2(trained_run, capsys):
    _, run_dir = trained_run
    assert run_cli("eval", run_dir, "--max-digits", "0") == 2
    assert run_cli("eval", run_dir / "missing") == 2
    assert "Traceback" not in capsys.readouterr().err
