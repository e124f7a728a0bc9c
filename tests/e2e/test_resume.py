"""The test of record: N steps straight == N/2 steps, stop, resume, N/2 more — bitwise."""

import json
import signal
import time

import pytest
from helpers import FAST, assert_states_equal, final_state, only_run, run_cli, run_process, scalars
from support import SMOKE

from latentrun.runs import checkpoint_file as checkpoint


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("straight")
    assert run_cli(SMOKE, "--runs-dir", runs_dir) == 0
    return only_run(runs_dir)


def test_stop_and_resume_is_bitwise_equal_to_straight_run(straight_run, tmp_path, smoke):
    assert run_cli(smoke, "--runs-dir", tmp_path, "--stop-at", 20) == 0
    run_dir = only_run(tmp_path)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "stopped" and meta["step"] == 20
    assert run_cli("--resume", run_dir) == 0

    assert_states_equal(final_state(straight_run, 40), final_state(run_dir, 40))
    straight_losses = [value for step, value in scalars(straight_run, "train/loss") if step > 20]
    resumed = scalars(run_dir, "train/loss")
    assert [step for step, _ in resumed] == list(range(1, 41)), "no duplicate or missing steps"
    assert [value for step, value in resumed if step > 20] == straight_losses
    assert scalars(run_dir, "val/exact_match") == scalars(straight_run, "val/exact_match")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "finished" and [e["event"] for e in meta["history"]] == ["start", "resume"]


@pytest.mark.slow  # a training process of its own, signalled mid-run
def test_sigterm_mid_run_leaves_a_resumable_run_that_ends_bitwise_equal(straight_run, tmp_path):
    process = run_process(SMOKE, "--runs-dir", tmp_path, "--set", "train.save_every=1000")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list(tmp_path.glob("smoke-*/train.log"))
        if runs and "step 3/40" in runs[0].read_text():
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    run_dir = only_run(tmp_path)
    [(stopped_step, _)] = checkpoint.step_checkpoints(run_dir / "checkpoints")
    assert 3 <= stopped_step < 40
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"

    assert run_cli("--resume", run_dir, "--set", "train.save_every=10") == 0
    assert_states_equal(final_state(straight_run, 40), final_state(run_dir, 40))
    straight = dict(scalars(straight_run, "train/loss"))
    resumed = scalars(run_dir, "train/loss")
    assert [step for step, _ in resumed] == list(range(1, 41))
    assert all(value == straight[step] for step, value in resumed)


def test_checkpoints_load_with_weights_only_and_are_pruned(straight_run):
    found = checkpoint.step_checkpoints(straight_run / "checkpoints")
    assert [step for step, _ in found] == [20, 30, 40]  # keep_last 3 of every 10 steps
    for _, path in found:
        state = checkpoint.load(path)
        assert {"model", "optimizer", "scheduler", "step", "rng", "trainer", "config"} <= state.keys()
    assert checkpoint.load(straight_run / "checkpoints" / "best.pt")["step"] in (20, 40)
    assert not list((straight_run / "checkpoints").glob(".*"))


LATENT_FEATURES = [
    "--set",
    "model.latent_mode=recurrent",
    "--set",
    "model.num_latent=3",
    "--set",
    "model.dropout=0.1",
    "--set",
    "loss.latent_supervision_weight=0.5",
    "--set",
    "train.teacher_forcing.schedule=cosine",
    "--set",
    "train.teacher_forcing.start_step=5",
    "--set",
    "train.teacher_forcing.end_step=30",
    "--set",
    "train.teacher_forcing.min_ratio=0.3",
]


def test_resume_is_bitwise_with_recurrent_latents_scheduled_sampling_and_step_supervision(tmp_path, smoke):
    """Coins, dropout and the latent chain all draw on or flow through saved state: stop mid-schedule."""
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *LATENT_FEATURES) == 0
    straight = only_run(tmp_path / "straight")
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *LATENT_FEATURES, "--stop-at", 17) == 0
    resumed = only_run(tmp_path / "resumed")
    assert run_cli("--resume", resumed) == 0

    assert_states_equal(final_state(straight, 40), final_state(resumed, 40))
    for tag in ("train/loss", "train/latent_loss", "train/teacher_forcing", "val/latent_accuracy", "val/exact_match"):
        assert scalars(resumed, tag) == scalars(straight, tag), tag
    ratios = dict(scalars(straight, "train/teacher_forcing"))
    assert ratios[5] == 1.0 and 0.3 < ratios[17] < 1.0 and ratios[40] == pytest.approx(0.3)


def test_resuming_with_another_thread_count_warns_that_exactness_is_lost(tmp_path, smoke):
    assert run_cli(smoke, "--runs-dir", tmp_path, "--stop-at", 10, "--set", "train.num_threads=1") == 0
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "meta.json").read_text())["threads"] == 1
    assert run_cli("--resume", run_dir, "--stop-at", 20) == 0  # the frozen config keeps 1 thread
    assert "bitwise" not in (run_dir / "train.log").read_text()
    assert run_cli("--resume", run_dir, "--set", "train.num_threads=2") == 0
    log = (run_dir / "train.log").read_text()
    assert "ran with 1 CPU thread(s) and resumes with 2" in log and "--set train.num_threads=1" in log
    assert json.loads((run_dir / "meta.json").read_text())["threads"] == 2


LATENT_FORCING = [
    "--set",
    "model.latent_mode=recurrent",
    "--set",
    "model.num_latent=3",
    "--set",
    "model.dropout=0.1",
    "--set",
    "loss.latent_supervision_weight=1",
    "--set",
    "train.latent_forcing.start_step=10",
    "--set",
    "train.latent_forcing.end_step=30",
]


@pytest.mark.parametrize("stop_at", [7, 22])
def test_resume_is_bitwise_with_teacher_forced_latents_annealed_to_free_running(tmp_path, smoke, stop_at):
    """Steps 1-10 run every latent forced in one parallel pass, 11-29 draw a coin per latent from
    saved state, 30-40 run free: stop in the parallel phase and inside the annealing window."""
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *LATENT_FORCING, *FAST) == 0
    straight = only_run(tmp_path / "straight")
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *LATENT_FORCING, *FAST, "--stop-at", stop_at) == 0
    resumed = only_run(tmp_path / "resumed")
    assert run_cli("--resume", resumed) == 0

    assert_states_equal(final_state(straight, 40), final_state(resumed, 40))
    for tag in ("train/loss", "train/latent_loss", "train/latent_forcing", "val/exact_match", "test/exact_match"):
        assert scalars(resumed, tag) == scalars(straight, tag), tag
    ratios = dict(scalars(straight, "train/latent_forcing"))
    assert ratios[10] == 1.0 and 0.0 < ratios[22] < 1.0 and ratios[30] == 0.0 and ratios[40] == 0.0


def test_resume_is_bitwise_with_latents_forced_and_supervised_on_icot_steps(tmp_path, smoke):
    """model.chain partial_products: the latents hold p0, p1 and the product (2-digit smoke operands);
    stop inside the annealing window, where the coins decide which latent is fed its true step."""
    icot = [*LATENT_FORCING, "--set", "model.chain=partial_products"]
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *icot, *FAST) == 0
    straight = only_run(tmp_path / "straight")
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *icot, *FAST, "--stop-at", 22) == 0
    resumed = only_run(tmp_path / "resumed")
    assert run_cli("--resume", resumed) == 0
    assert_states_equal(final_state(straight, 40), final_state(resumed, 40))
    for tag in ("train/loss", "train/latent_loss", "val/latent_accuracy", "val/exact_match", "test/exact_match"):
        assert scalars(resumed, tag) == scalars(straight, tag), tag
    running = tmp_path / "running_sums"
    assert run_cli(smoke, "--runs-dir", running, *LATENT_FORCING, *FAST, "--stop-at", 5) == 0
    assert scalars(only_run(running), "train/latent_loss")[0] != scalars(straight, "train/latent_loss")[0]


def test_resume_is_bitwise_with_abacus_positions_and_their_random_shifts(tmp_path, smoke):
    abacus = ["--set", "model.position=abacus", "--set", "model.abacus_max_offset=4", "--set", "model.dropout=0.1"]
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *abacus, *FAST) == 0
    straight = only_run(tmp_path / "straight")
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *abacus, *FAST, "--stop-at", 13) == 0
    resumed = only_run(tmp_path / "resumed")
    assert run_cli("--resume", resumed) == 0
    assert "backbone.wae.weight" in final_state(straight, 40)["model"]
    assert_states_equal(final_state(straight, 40), final_state(resumed, 40))
    for tag in ("train/loss", "val/exact_match", "test/exact_match"):
        assert scalars(resumed, tag) == scalars(straight, tag), tag
