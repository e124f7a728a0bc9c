"""Numeric precision of training: which one `auto` means on this machine, and autocast plus loss
scaling for the one chosen.

Weights, gradients and optimizer state stay fp32 in every mode; bf16 and fp16 only change what the
forward and backward passes compute in (autocast). fp16 also needs a GradScaler, whose scale and
growth counter decide whether the next step is skipped, so its state goes into every checkpoint.

On CUDA, `auto` picks bf16 where the GPU supports it and fp16 elsewhere. On a CPU, bf16 helps only
when the matmuls are big enough for the bf16 kernels to beat the cost of casting, so `auto` times a
few forward and backward passes of the configured model in both precisions and picks bf16 only
when it is clearly faster. The choice is recorded, and a resumed run reuses it rather than
measuring again, so a resume computes exactly what the original run would have.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentrun.core.errors import CheckpointError, ConfigError

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# bf16 must beat fp32 by this much on the CPU probe: on a machine shared with other jobs, single
# timings swing by several percent, and a near tie is not worth leaving fp32's exact arithmetic.
CPU_BF16_MIN_SPEEDUP = 1.10
PROBE_ROUNDS = 3  # timed passes per precision, interleaved; the median of each is compared


@dataclass(frozen=True)
class Choice:
    """A resolved precision and why: `timings` holds the probe's median seconds when one ran."""

    name: str
    reason: str
    timings: dict[str, float] | None = None


def decide(
    requested: str,
    device: torch.device,
    checkpoint: dict[str, Any] | None,
    model: nn.Module,
    step_loss: Callable[[nn.Module], torch.Tensor],
) -> Choice:
    """The precision a session trains in, decided here and nowhere else.

    A resumed `auto` run (`checkpoint` holds its state) keeps the precision it started with:
    measuring again could choose differently and break exactness. Anything else is resolved afresh;
    an `auto` run on a CPU times forward and backward passes of a copy of `model` through
    `step_loss`, the trainer's own loss of its first step.
    """
    started_in = recorded(checkpoint)
    if requested == "auto" and started_in is not None:
        check_available(started_in, device)
        return Choice(started_in, "auto: the precision this run started with")
    return resolve(requested, device, lambda: probe_seconds(training_pass(model, step_loss, device)))


def recorded(checkpoint: dict[str, Any] | None) -> str | None:
    """The precision a checkpoint was trained in; None without a checkpoint (a new run)."""
    if checkpoint is None:
        return None
    trainer_state = checkpoint.get("trainer")
    # Checkpoints from before train.precision existed were trained in fp32.
    name = trainer_state.get("precision", "fp32") if isinstance(trainer_state, dict) else "fp32"
    if name not in PRECISIONS:
        raise CheckpointError(f"checkpoint records an unknown precision {name!r}")
    return name


def check_requested(requested: str, device: torch.device) -> None:
    """ConfigError before anything is written when the config names a precision `device` cannot run."""
    if requested != "auto":
        check_available(requested, device)


def training_pass(
    model: nn.Module, step_loss: Callable[[nn.Module], torch.Tensor], device: torch.device
) -> Callable[[str], None]:
    """A forward and backward pass of a copy of `model` through `step_loss`, in a given precision;
    the optimizer step is left out because it runs in fp32 whatever the precision.

    The copy and a forked RNG leave the run's own weights and random streams untouched, so a run
    whose precision is fixed in the config computes exactly what a probed one does.
    """
    probed = copy.deepcopy(model).train()

    def run_pass(name: str) -> None:
        with torch.random.fork_rng(devices=[]):
            with torch.autocast(device.type, dtype=DTYPES[name], enabled=name != "fp32"):
                loss = step_loss(probed)
            loss.backward()
        probed.zero_grad(set_to_none=True)

    return run_pass


def resolve(requested: str, device: torch.device, probe: Callable[[], dict[str, float]]) -> Choice:
    """Turn `train.precision` into fp32, bf16 or fp16 for `device`.

    `probe` is called only when `auto` has to measure (on a CPU); it returns the median seconds of a
    training pass per precision, as `probe_seconds` does.
    """
    if requested != "auto":
        check_available(requested, device)
        return Choice(requested, "set in the config")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Choice("bf16", "auto: the GPU supports bf16")
        return Choice("fp16", "auto: the GPU lacks bf16, so fp16 with loss scaling")
    if device.type != "cpu":
        return Choice("fp32", f"auto: fp32 on {device.type}")
    timings = probe()
    speedup = timings["fp32"] / timings["bf16"]
    name = "bf16" if speedup >= CPU_BF16_MIN_SPEEDUP else "fp32"
    return Choice(
        name,
        f"auto: a bf16 training pass on this CPU runs {speedup:.2f}x the speed of fp32 "
        f"(bf16 needs >= {CPU_BF16_MIN_SPEEDUP:.2f}x)",
        timings,
    )


def check_available(name: str, device: torch.device) -> None:
    """ConfigError when `device` cannot autocast to `name`, before any training starts."""
    if name == "fp32":
        return
    if not torch.amp.autocast_mode.is_autocast_available(device.type):
        raise ConfigError(
            [f"train.precision: {name} needs autocast, which torch does not offer on {device.type}; use fp32"]
        )
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(["train.precision: bf16 requested but this GPU does not support it; use fp16 or auto"])


def probe_seconds(run_pass: Callable[[str], None], rounds: int = PROBE_ROUNDS) -> dict[str, float]:
    """Median seconds of `run_pass(precision)` for fp32 and bf16, measured alternately.

    Alternating (after one untimed warm-up pass each) means a change in the machine's load during
    the probe hits both precisions alike instead of favouring whichever ran in the quiet moment.
    """
    candidates = ("fp32", "bf16")
    for name in candidates:
        run_pass(name)
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name in candidates:
            start = time.perf_counter()
            run_pass(name)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


class MixedPrecision:
    """Autocast and loss scaling for one resolved precision on one device.

    With fp32 and bf16 the scaler is disabled and every method is a plain pass-through, so an fp32
    step computes exactly what it would without this class.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
        self.name = name
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> AbstractContextManager:
        """The context the forward pass and loss run in."""
        return torch.autocast(self.device_type, dtype=DTYPES[self.name], enabled=self.name != "fp32")

    @property
    def skips_nonfinite_gradients(self) -> bool:
        """Whether the scaler itself skips steps with inf/NaN gradients (fp16): those are routine then."""
        return self.scaler.is_enabled()

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring gradients back to their true size, so that clipping sees real norms."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Optimizer step (skipped by the scaler when fp16 gradients overflowed), then scale update."""
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's scale and growth counter (empty when disabled): plain floats and ints."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)
