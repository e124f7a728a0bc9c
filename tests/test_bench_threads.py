"""bench/threads.py end to end on the smoke recipe: one timed update per thread count, so the
benchmark a budget claim rests on keeps running as the trainer changes. The figures themselves are
machine-dependent and live in bench/RESULTS.md, never in a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from threads import projected_hours  # noqa: E402


def run_threads(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/threads.py", "--config", "experiments/smoke.yaml", "--rounds", "1", "--steps", "1"]
        + list(arguments),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_forced_and_free_steps_are_timed_and_projected() -> None:
    # 40 smoke updates: the first 10 all forced, free-running from 30 (linear decay between)
    forcing = [
        "model.latent_mode=recurrent",
        "loss.latent_supervision_weight=1.0",
        "train.latent_forcing.start_step=10",
        "train.latent_forcing.end_step=30",
    ]
    result = run_threads("--threads", "1", *(part for item in forcing for part in ("--set", item)))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    kinds = [row[1] for row in rows if row and row[0] == "smoke"]
    assert kinds == ["forced", "free", "40"]  # the last row is "40 updates ... h projected"
    assert "h projected" in result.stdout.splitlines()[-1]


def test_a_recipe_that_says_auto_needs_a_precision_named() -> None:
    result = run_threads("--threads", "1", "--set", "train.precision=auto")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "experiments/smoke.yaml: train.precision is auto; name one with --precision fp32|bf16|fp16"
    )
    named = run_threads("--threads", "1", "--set", "train.precision=auto", "--precision", "fp32")
    assert named.returncode == 0, named.stderr


def test_projection_counts_forced_steps_at_their_own_rate() -> None:
    # by hand: 4000 forced updates at 0.1 s, 36,000 free-running at 0.2 s = 7600 s
    assert abs(projected_hours(40_000, 4000, {"forced": 0.1, "free": 0.2}) - 7600 / 3600) < 1e-12
    # a recipe without forcing: 40,000 at 0.15 s = 6000 s
    assert abs(projected_hours(40_000, 0, {"all": 0.15}) - 6000 / 3600) < 1e-12
