"""Every benchmark in one process and one table of the figures the targets are about.

python bench/all.py                       # this machine, the issue's targets (tens of minutes on a CPU)
python bench/all.py --quick               # smoke-sized: checks that every benchmark runs (a minute)
python bench/all.py --device cuda --precision bf16 --set train.compile=true   # what bench/gpu.sh runs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common as common
import checkpoint as checkpoint_bench
import datagen
import decode
import mfu
import overhead
import torch
from loguru import logger

from latentrun.config.build import resolve_device

TWO, THREE = "experiments/latent_2digit.yaml", "experiments/latent_3digit.yaml"
SMOKE = "experiments/smoke.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="precision of the training benchmarks (MFU always shows fp32 and this one)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs: exercise every path, measure nothing")
    parser.add_argument(
        "--three-digit-overhead-steps",
        type=int,
        default=50,
        help="runner steps of the 3-digit overhead window (250 would hold an evaluation)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    common.add_set(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    logger.remove()  # the runner's log lines go to each benchmark's train.log, not between the figures
    sets = args.overrides
    quick = args.quick
    started = time.perf_counter()
    print(common.machine(), flush=True)
    precisions = sorted({"fp32", args.precision}, key=["fp32", "bf16", "fp16"].index)
    rows = []

    def add(benchmark: str, config: str, figure: str, value: float, target: str, met: bool | None) -> None:
        verdict = "-" if met is None or quick else ("met" if met else "MISSED")
        rows.append([benchmark, Path(config).stem, figure, value, target, verdict])
        print(
            f"  {benchmark} {Path(config).stem}: {figure} = {value:.4g} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    # At the schema's default logging, eval and checkpoint settings. The 2-digit window spans one
    # evaluation; the 3-digit one (seconds per step on a CPU) times an evaluation and amortizes it.
    defaults = ["train.log_every=10", "train.save_every=50", "train.eval_every=250"]
    for config, steps in [(SMOKE, 4)] if quick else [(TWO, None), (THREE, args.three_digit_overhead_steps)]:
        row = overhead.measure(config, args.precision, steps, device.type, [*defaults, *sets])
        add(
            "overhead",
            config,
            f"runner/bare, {row[2]} steps ({args.precision}, eval {row[-2]})",
            row[-1],
            "<= 1.03",
            row[-1] <= 1.03,
        )
    # The latent configs only: the 3-digit one is the target's "default model", and every extra
    # config costs a compilation under --set train.compile=true (bench/mfu.py alone runs all four).
    for config in [SMOKE] if quick else [TWO, THREE]:
        for row in mfu.measure(config, precisions, 1 if quick else 3, device, 256 if quick else 4096, sets):
            is_target = config == THREE
            add(
                "mfu",
                config,
                f"MFU {row[2]} vs fp32 peak",
                row[-1],
                ">= 0.40" if is_target else "",
                row[-1] >= 0.40 if is_target else None,
            )
            if row[2] != "fp32":
                add("mfu", config, f"MFU {row[2]} vs {row[2]} peak", row[-2], "", None)
    for config in [SMOKE] if quick else [TWO, THREE]:
        row = datagen.measure(config, args.precision, 1 if quick else 5, 2 if quick else 20, device, sets)
        add("datagen", config, "batch draw / step", row[-1], "<= 0.02", row[-1] <= 0.02)
        row = checkpoint_bench.measure(config, args.precision, 1 if quick else 3, 50, device, sets)
        add("checkpoint", config, "share of training at save_every=50", row[-1], "<= 0.01", row[-1] <= 0.01)
    for config in [SMOKE] if quick else ["experiments/simple_3digit.yaml", THREE]:
        row = decode.measure(config, 50 if quick else 1000, 1 if quick else 3, args.precision, device, [])
        add(
            "decode",
            config,
            f"uncached/cached, batch {row[2]} (same digits: {row[-1]})",
            row[-2],
            ">= 3",
            row[-2] >= 3 and row[-1],
        )

    print(
        f"\n{common.machine()}; {time.perf_counter() - started:.0f} s in all"
        f"{'; --quick: figures are not measurements' if quick else ''}"
    )
    print(common.table(["benchmark", "config", "figure", "value", "target", "verdict"], rows))


if __name__ == "__main__":
    main()
