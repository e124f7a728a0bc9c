"""A run of a file that `extends` another freezes the resolved whole, with no base left to find."""

import shutil

from helpers import FAST, only_run, run_cli
from support import SMOKE

from latentrun import config


def test_the_frozen_config_is_the_resolved_whole(tmp_path):
    shutil.copy(SMOKE, tmp_path / "smoke.yaml")
    child = tmp_path / "shorter.yaml"
    child.write_text("extends: smoke.yaml\ntrain:\n  max_steps: 4\n")
    runs_dir = tmp_path / "runs"
    assert run_cli(child, "--runs-dir", runs_dir, "--stop-at", "1", *FAST) == 0
    frozen = (only_run(runs_dir) / "config.yaml").read_text()
    assert "extends" not in frozen
    assert frozen == config.dump(config.load(child, ["train.num_threads=1"]))
    assert "experiment: shorter\n" in frozen and "  d_model: 32\n" in frozen and "  max_steps: 4\n" in frozen
