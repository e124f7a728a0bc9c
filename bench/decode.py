"""Greedy decoding with and without the KV cache, for 3-digit products at batch 1000.

Without the cache every new digit re-runs the whole growing sequence; with it, the prompt (and
latents) run once and each digit runs alone. Both paths alternate round by round; the table also
checks that they wrote the same digits.

    python bench/decode.py [--config ...] [--batch 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common as common
import torch

from latentrun.config.build import build_model, build_task, resolve_device
from latentrun.train.precision import DTYPES


def measure(
    config_path: str, batch: int, rounds: int, precision: str, device: torch.device, overrides: list[str]
) -> list:
    config = common.load_config(config_path, [f"train.device={device.type}", *overrides])
    task = build_task(config)
    model = build_model(config, task).to(device).eval()
    prompt = task.train_batch(1, batch).prompt.to(device)
    outputs = {}

    def decode(use_cache: bool):
        with torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32"):
            outputs[use_cache] = model.generate(prompt, use_cache=use_cache)

    decode(True), decode(False)  # warm-up
    seconds = common.interleaved({"cached": lambda: decode(True), "uncached": lambda: decode(False)}, rounds, device)
    cached, uncached = common.median(seconds["cached"]), common.median(seconds["uncached"])
    return [
        Path(config_path).stem,
        precision,
        batch,
        task.answer_len,
        uncached,
        cached,
        uncached / cached,
        bool(torch.equal(outputs[True], outputs[False])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", nargs="+", default=["experiments/simple_3digit.yaml", "experiments/latent_3digit.yaml"]
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    common.add_set(parser)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(common.machine())
    rows = [measure(path, args.batch, args.rounds, args.precision, device, args.overrides) for path in args.config]
    print(f"{args.rounds} rounds alternating cached and uncached decoding; medians")
    print(
        common.table(
            ["config", "precision", "batch", "digits", "uncached s", "cached s", "speedup", "same digits"], rows
        )
    )


if __name__ == "__main__":
    main()
