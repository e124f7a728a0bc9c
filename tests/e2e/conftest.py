"""Fixtures of the end-to-end tests; the helpers they use live in helpers.py."""

from pathlib import Path

import pytest
from helpers import FAST, only_run, run_cli
from support import SMOKE


@pytest.fixture
def smoke() -> Path:
    return SMOKE


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The run directory of a smoke run that never stopped (40 steps), for bitwise comparisons."""
    runs_dir = tmp_path_factory.mktemp("straight")
    assert run_cli(SMOKE, "--runs-dir", runs_dir, *FAST) == 0
    return only_run(runs_dir)
