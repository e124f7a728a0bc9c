"""What every test folder shares: the repository's paths, the smoke experiments, a dead pid.

Importable as `support` from any folder: tests/conftest.py puts tests/ on sys.path (pytest's
default import mode), however pytest is started and from whichever working directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
# The whole-run tests' configs: 40 steps of a tiny model, a few seconds each.
SMOKE = EXPERIMENTS / "smoke.yaml"  # latent_transformer
SMOKE_SIMPLE = EXPERIMENTS / "smoke_simple.yaml"  # simple_transformer
SMOKE_CHAIN = EXPERIMENTS / "smoke_chain.yaml"  # chain_transformer with a written chain


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped, so no process holds it (until reused)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
