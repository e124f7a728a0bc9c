"""The chaos suite: kills, racing readers and damaged records, at seeded random moments.

Every test that draws its moments takes `chaos_seed`: a fresh seed per session, printed with the
test's name so that a failure can be replayed with LATENTRUN_CHAOS_SEED=N.
"""

import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the end-to-end helpers (run_cli, only_run)


@pytest.fixture(scope="session")
def chaos_seed_base() -> int:
    return int(os.environ.get("LATENTRUN_CHAOS_SEED") or random.SystemRandom().randrange(1, 1_000_000))


@pytest.fixture
def chaos_seed(chaos_seed_base: int, request: pytest.FixtureRequest) -> int:
    print(f"\n{request.node.nodeid}: chaos seed {chaos_seed_base} (replay: LATENTRUN_CHAOS_SEED={chaos_seed_base})")
    return chaos_seed_base


@pytest.fixture
def rng(chaos_seed: int) -> random.Random:
    return random.Random(chaos_seed)
