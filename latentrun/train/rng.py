"""The global random streams a training step may draw on: seeded from the run's seed (and rank),
captured into a checkpoint and put back, so that a resumed run draws exactly what an uninterrupted
one would have."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from latentrun.train import distributed


def seed_globals(seed: int) -> None:
    """Python's and NumPy's global streams from the run's seed, before anything is built (torch's
    is seeded where the model's weights are initialised)."""
    random.seed(seed)
    np.random.seed(seed)


def seed_rank_streams(seed: int, rank: int) -> None:
    """Give each rank its own global RNG streams (dropout, sampling coins) after the shared weight init;
    identical streams would make every rank drop the same units. A world of one keeps the streams it had."""
    python_seed, numpy_seed, torch_seed = np.random.SeedSequence([seed, rank]).generate_state(3)
    random.seed(int(python_seed))
    np.random.seed(int(numpy_seed))
    torch.manual_seed(int(torch_seed))


def capture_rng() -> dict[str, Any]:
    """Every global random stream a training step may touch: Python, NumPy, torch CPU, every CUDA device."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    devices = _cuda_devices()
    return {
        "python": random.getstate(),
        # NumPy's state holds an ndarray, which weights_only loading refuses; store it as a tensor.
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(index) for index in devices],
        "cuda_devices": devices,
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the streams `capture_rng` saved."""
    random.setstate(_as_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        # Checkpoints from before `cuda_devices` hold every device's state in device order.
        for index, device_state in zip(state.get("cuda_devices", range(len(state["cuda"]))), state["cuda"]):
            torch.cuda.set_rng_state(device_state, index)


def _cuda_devices() -> list[int]:
    """Every CUDA device in a world of one; under torchrun only this rank's own, since touching the
    others would create a CUDA context on every GPU from every rank."""
    if not torch.cuda.is_available():
        return []
    if distributed.context().world_size > 1:
        return [torch.cuda.current_device()]
    return list(range(torch.cuda.device_count()))


def _as_tuples(value: Any) -> Any:
    """random.setstate wants the nested tuples back that a round trip may have turned into lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
