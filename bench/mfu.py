"""Model FLOP utilisation: achieved FLOP/s of a runner training step over this machine's measured
matmul peak, in fp32 and bf16, for the 2- and 3-digit experiments.

FLOPs per step are counted, not estimated: torch's FlopCounterMode records every matmul of the
forward and backward pass (attention included; the CPU attention kernel is taught to it below).
Elementwise work, the loss and the optimizer step do count towards the step's time but not its
FLOPs, which is what "model FLOPs" utilisation means. The peak is the best rate of large square
matmuls. Each round times the peak and then one `Trainer.train_step`, so both see the same load,
and the utilisation is the median over rounds of the per-round ratio.

A recipe with teacher-forced latents (`train.latent_forcing`) trains in two kinds of step: forced
(one parallel pass, before `start_step`) and free-running (one pass per latent, from `end_step`
on); each gets its own row, timed at steps of that phase.

    python bench/mfu.py [--config A.yaml B.yaml ...] [--precision fp32 bf16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import _common as common
import torch
from torch.utils import flop_counter

from latentrun.config.build import resolve_device
from latentrun.train.precision import DTYPES
from latentrun.train.rules import latent_forcing_active

aten = torch.ops.aten
DEFAULT_CONFIGS = [
    "experiments/simple_2digit.yaml",
    "experiments/latent_2digit.yaml",
    "experiments/simple_3digit.yaml",
    "experiments/latent_3digit.yaml",
    "experiments/best_3digit.yaml",
    "experiments/best_3digit_latent.yaml",
    "experiments/best_4digit.yaml",
    "experiments/best_4digit_latent.yaml",
    "experiments/best_4digit_simple.yaml",
    "experiments/best_5digit.yaml",
]


def _sdpa_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# FlopCounterMode knows the CUDA attention kernels but not the CPU one; same formulas apply.
CPU_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward,
}


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int, repeats: int = 3) -> float:
    """Best FLOP/s of `size`-square matmuls in `dtype`."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    best = min(common.timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / best


def step_flops(trainer, step: int) -> int:
    """FLOPs of the matmuls in one forward and backward pass of the runner's step, counted on the
    plain module: compiled kernels bypass the counter, and compiling changes no FLOPs."""
    compiled, trainer.forward = trainer.forward, trainer.model
    try:
        with flop_counter.FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as counter:
            trainer.train_step(step)
    finally:
        trainer.forward = compiled
    return counter.get_total_flops()


def phases(config: dict) -> dict[str, int]:
    """The first step of each kind of training step the recipe takes: 'forced' (every latent fed
    its true running sum) and 'free' for a latent-forcing recipe, 'all' otherwise."""
    if not latent_forcing_active(config["train"]):
        return {"all": 1}
    forcing = config["train"]["latent_forcing"]
    found = {"forced": 1} if forcing["start_step"] > 0 else {}
    if forcing["min_ratio"] == 0:
        found["free"] = forcing["end_step"] + 1
    return found


def measure(
    config_path: str, precisions: list[str], rounds: int, device: torch.device, size: int, overrides: list[str]
) -> list[list]:
    config = common.load_config(config_path, [f"train.device={device.type}", *overrides])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for (phase, first), precision in itertools.product(phases(config).items(), precisions):
            trainer = common.make_trainer(config, device, precision, Path(folder))
            flops = step_flops(trainer, first)
            trainer.train_step(first + 1)  # warm-up outside the counter
            peak_dtype = DTYPES[precision]
            peaks, fp32_peaks, seconds = [], [], []
            for index in range(rounds):
                peaks.append(matmul_peak(peak_dtype, device, size))
                fp32_peaks.append(peaks[-1] if precision == "fp32" else matmul_peak(torch.float32, device, size))
                seconds.append(common.timed(lambda: trainer.train_step(first + 2 + index), device))
            rate = [flops / s for s in seconds]
            rows.append(
                [
                    Path(config_path).stem,
                    phase,
                    f"{trainer.model.num_parameters() / 1e6:.2f}M",
                    precision,
                    flops / 1e9,
                    common.median(seconds),
                    common.median(rate) / 1e9,
                    common.median(peaks) / 1e9,
                    common.median([r / p for r, p in zip(rate, peaks)]),
                    common.median([r / p for r, p in zip(rate, fp32_peaks)]),
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the square matmuls timed for the peak")
    common.add_set(parser)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(common.machine())
    rows = [
        row
        for path in args.config
        for row in measure(path, args.precision, args.rounds, device, args.matmul_size, args.overrides)
    ]
    print(f"{args.rounds} rounds of (matmul peak, one training step); medians")
    print(
        common.table(
            [
                "config",
                "steps",
                "params",
                "precision",
                "GFLOP/step",
                "step s",
                "GFLOP/s",
                "peak GFLOP/s",
                "MFU (same-precision peak)",
                "MFU (fp32 peak)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
