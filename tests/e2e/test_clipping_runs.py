"""AutoClip through whole runs: the threshold follows recent norms, is logged, and resumes bitwise."""

import pytest
from helpers import assert_states_equal, final_state, only_run, run_cli, scalars

SETTINGS = (
    "--set",
    "train.max_steps=20",
    "--set",
    "train.clip_mode=autoclip",
    "--set",
    "train.clip_percentile=25",
    "--set",
    "train.clip_window=8",
)


def test_autoclip_stop_and_resume_is_bitwise_equal_and_logs_its_threshold(smoke, tmp_path):
    assert run_cli(smoke, "--runs-dir", tmp_path / "straight", *SETTINGS) == 0
    assert run_cli(smoke, "--runs-dir", tmp_path / "resumed", *SETTINGS, "--stop-at", 10) == 0
    assert run_cli("--resume", only_run(tmp_path / "resumed")) == 0
    straight, resumed = only_run(tmp_path / "straight"), only_run(tmp_path / "resumed")

    assert_states_equal(final_state(straight, 20), final_state(resumed, 20))
    history = final_state(resumed, 20)["trainer"]["clipping"]["history"]
    assert history == final_state(straight, 20)["trainer"]["clipping"]["history"] and len(history) == 8
    thresholds = scalars(resumed, "train/clip_threshold")
    assert thresholds == scalars(straight, "train/clip_threshold")
    assert len({value for _, value in thresholds}) > 1, "the threshold moves with the norms"
    assert all(value <= 1.0 for _, value in thresholds), "never above train.max_grad_norm"
    norms = dict(scalars(resumed, "train/grad_norm"))
    assert thresholds[0][1] == pytest.approx(min(1.0, norms[1])), "step 1's window holds its own norm only"
    assert scalars(straight, "train/loss") == scalars(resumed, "train/loss")
