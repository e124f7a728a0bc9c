"""Checking a config, cross-key rules included, needs no torch."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT, SMOKE


def test_validating_a_config_imports_no_torch():
    """`validate`, `keys` and `--help` start fast because config checking stays torch-free."""
    code = (
        "import sys; from latentrun import config; "
        f"config.load({str(SMOKE)!r}); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_broken_cross_rule_is_reported_without_torch(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: latent_transformer, d_model: 64, num_heads: 5}\n")
    code = (
        "import sys; from latentrun import config\n"
        "try:\n"
        f"    config.load({str(bad)!r})\n"
        "except config.ConfigError as e:\n"
        "    print(e)\n"
        "assert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert out == f"{bad}:1: model.num_heads: num_heads (5) must divide d_model (64)\n"
