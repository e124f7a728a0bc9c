"""Readers during training never see a torn checkpoint: best.pt is saved over and over by one
process while this one loads it, as predict, eval and compare do on a run that trains."""

import subprocess
import sys
import textwrap
import time

import pytest
import torch

from latentrun.runs import checkpoint_file as checkpoint

pytestmark = pytest.mark.slow  # a second process saves best.pt 100 times while this one reads it

WRITER = textwrap.dedent(
    """
    import random, sys, time
    from pathlib import Path
    import torch
    from latentrun.runs import checkpoint_file as checkpoint

    path, seed, saves = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    draw = random.Random(seed)
    for step in range(1, saves + 1):
        size = draw.randrange(1, 2000)  # varying sizes: a torn pair differs in length as well as hash
        checkpoint.save(path, {"step": step, "model": {"w": torch.full((size,), float(step))}})
        time.sleep(draw.random() * 0.002)
    """
)


def test_best_pt_read_while_it_is_saved_again_is_always_whole(tmp_path, rng):
    path = tmp_path / checkpoint.BEST_FILE
    checkpoint.save(path, {"step": 0, "model": {"w": torch.zeros(1)}})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rng.randrange(1 << 30)), "100"])
    loads, errors = 0, []
    deadline = time.monotonic() + 600  # generous: a loaded machine fsyncs slowly
    while writer.poll() is None and time.monotonic() < deadline:
        try:
            state = checkpoint.load(path)
        except checkpoint.CheckpointError as error:
            errors.append(str(error))
            continue
        loads += 1
        assert torch.all(state["model"]["w"] == float(state["step"]))
    assert writer.wait(timeout=60) == 0
    assert loads > 50, loads  # the reader really raced the writer
    assert errors == [], f"{len(errors)} of {loads + len(errors)} loads failed, first: {errors[0]}"
