"""Data generation: training batches per second against the training step they feed.

Every training batch is drawn on the fly from (seed, step, rank), so its cost is paid inside
every step. Drawing batches and running runner steps alternate, round by round, so that both see
the same load; the share is the median per-round draw time over the median step time.

    python bench/datagen.py [--config experiments/latent_2digit.yaml ...] [--rounds 5] [--draws 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as common
import torch

from latentrun.config.build import resolve_device


def measure(
    config_path: str, precision: str, rounds: int, draws: int, device: torch.device, overrides: list[str]
) -> list:
    config = common.load_config(config_path, [f"train.device={device.type}", *overrides])
    batch_size = config["train"]["batch_size"]
    with tempfile.TemporaryDirectory() as folder:
        trainer = common.make_trainer(config, device, precision, Path(folder))
        task = trainer.task
        trainer.train_step(1)
        step = iter(range(2, 10**9))
        draw_seconds, step_seconds = [], []
        for _ in range(rounds):
            # As train_step does it: draw on the CPU, then move to the training device.
            draw_seconds.append(
                common.timed(
                    lambda: [task.train_batch(next(step), batch_size).to(device) for _ in range(draws)], device
                )
                / draws
            )
            step_seconds.append(common.timed(lambda: trainer.train_step(next(step)), device))
    draw, train_step = common.median(draw_seconds), common.median(step_seconds)
    return [Path(config_path).stem, precision, batch_size, 1 / draw, draw * 1e3, train_step, draw / train_step]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", nargs="+", default=["experiments/latent_2digit.yaml", "experiments/latent_3digit.yaml"]
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=20, help="batches drawn per round")
    parser.add_argument("--device", default="cpu")
    common.add_set(parser)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(common.machine())
    rows = [measure(path, args.precision, args.rounds, args.draws, device, args.overrides) for path in args.config]
    print(f"{args.rounds} rounds of ({args.draws} batch draws, one training step); medians")
    print(common.table(["config", "precision", "batch", "batches/s", "ms/batch", "step s", "share of step"], rows))


if __name__ == "__main__":
    main()
