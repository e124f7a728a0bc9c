"""compare's arithmetic on fabricated runs: grouping by seed, mean ± std, the efficiency verdict, FLOPs."""

import math

import pytest
from support import SMOKE

from latentrun import config
from latentrun.config.build import build_model, build_task
from latentrun.models import flops
from latentrun.report import compare as report
from latentrun.report import compare_output


def fake_run(run_id, overrides=(), **values):
    resolved = config.load(SMOKE, list(overrides))
    metrics = {m.key: None for m in compare_output.metrics(0.99)}
    return {
        "id": run_id,
        "experiment": resolved["experiment"],
        "model": resolved["model"]["name"],
        "_config": resolved,
        **metrics,
        **values,
    }


def grouped(summaries):
    groups = report.group_runs(summaries)
    for group in groups:
        group["metrics"] = {
            m.key: report.aggregate([run[m.key] for run in group["runs"]]) for m in compare_output.metrics(0.99)
        }
    return groups


def test_aggregate_is_mean_and_sample_std():
    stats = report.aggregate([0.2, 0.4, None, 0.9])
    assert stats["mean"] == pytest.approx(0.5) and stats["std"] == pytest.approx(math.sqrt(0.13))
    assert (stats["n"], stats["of"]) == (3, 4)
    assert report.aggregate([0.7])["std"] is None and report.aggregate([None])["mean"] is None


def test_seeds_group_together_and_other_changes_split():
    runs = [
        fake_run("s1", ["seed=1"]),
        fake_run("s2", ["seed=2", "train.num_threads=1"]),
        fake_run("lr", ["optimizer.lr=0.01"]),
        fake_run("long", ["train.max_steps=80"]),
    ]
    groups = report.group_runs(runs)
    assert [[run["id"] for run in group["runs"]] for group in groups] == [["s1", "s2"], ["lr"], ["long"]]
    assert [group["label"] for group in groups] == [
        "smoke [optimizer.lr=0.001, train.max_steps=40]",
        "smoke [optimizer.lr=0.01, train.max_steps=40]",
        "smoke [optimizer.lr=0.001, train.max_steps=80]",
    ]


def test_table_shows_mean_and_std_for_seed_groups():
    groups = grouped(
        [
            fake_run("s1", ["seed=1"], exact_match=0.5, parameters=100),
            fake_run("s2", ["seed=2"], exact_match=0.7, parameters=100),
        ]
    )
    table = compare_output.format_table(groups, compare_output.metrics(0.99))
    row = {line[:30].strip(): line[30:].strip() for line in table.splitlines()}
    assert row["val/exact_match"] == "0.6000 ± 0.1414"
    assert row["parameters"] == "100"  # equal across seeds: no "± 0"
    assert row["runs"] == "2"


def test_verdict_by_exact_match_per_parameter():
    groups = grouped(
        [
            fake_run("a", exact_match_per_million_params=3.0, loss_x_params=50.0),
            fake_run("b", ["model.d_model=64"], exact_match_per_million_params=1.2, loss_x_params=10.0),
        ]
    )
    decision = report.verdict(groups)
    assert decision["metric"] == "exact_match_per_million_params" and decision["ratio"] == pytest.approx(2.5)
    assert decision["winner"].startswith("smoke [model.d_model=32]") and "2.50x" in decision["text"]


def test_verdict_falls_back_to_loss_times_parameters_without_exact_matches():
    groups = grouped(
        [
            fake_run("a", exact_match_per_million_params=0.0, loss_x_params=40.0),
            fake_run("b", ["model.d_model=64"], exact_match_per_million_params=0.0, loss_x_params=10.0),
        ]
    )
    decision = report.verdict(groups)
    assert decision["metric"] == "loss_x_params" and decision["ratio"] == pytest.approx(4.0)
    assert "d_model=64" in decision["winner"]


def test_verdict_says_when_the_lead_is_within_seed_noise_and_needs_two_groups():
    groups = grouped(
        [
            fake_run("a1", ["seed=1"], exact_match_per_million_params=1.0),
            fake_run("a2", ["seed=2"], exact_match_per_million_params=3.0),
            fake_run("b", ["model.d_model=64"], exact_match_per_million_params=1.8),
        ]
    )
    assert report.verdict(groups)["within_seed_spread"] is True
    assert report.verdict(groups[:1]) is None


def test_flops_follow_the_six_n_t_rule_and_count_attention():
    resolved = config.load(SMOKE)
    task = build_task(resolved)
    model = build_model(resolved, task)
    batch = task.train_batch(1, 4)
    counted = flops.training_flops_per_example(model, batch.prompt, batch.answer)
    tokens = task.prompt_len + resolved["model"]["num_latent"] + task.answer_len - 1
    assert counted == pytest.approx(6 * model.num_parameters() * tokens, rel=0.1)
    assert all(p.grad is None for p in model.parameters())
    without_attention = flops.flop_counter.FlopCounterMode(display=False)
    with without_attention:
        model(batch.prompt[:2], batch.answer[:2]).sum().backward()
    assert counted > without_attention.get_total_flops() / 2  # the fused CPU attention kernel is counted


def test_a_group_mixing_finished_and_unfinished_runs_is_pointed_out():
    groups = grouped(
        [
            fake_run("a", status="finished", steps=40),
            fake_run("b", ["seed=1"], status="interrupted", steps=20),
            fake_run("c", ["optimizer.lr=0.01"], status="finished", steps=40),
        ]
    )
    notes = [compare_output.unfinished_notes(group) for group in groups]
    assert notes[1] == []
    [note] = notes[0]
    assert "mixes finished and unfinished runs (b interrupted at step 20)" in note


def test_curves_without_any_point_plot_without_a_matplotlib_warning(tmp_path):
    import warnings

    run = fake_run("a", status="crashed", steps=0, curves={tag: [] for tag in compare_output.CURVES})
    groups = grouped([run])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_output.plot_curves(groups, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").is_file()
