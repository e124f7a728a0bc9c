"""Checkpoints: save and load time and size, and their share of training time at save_every=50.

Saving is timed the way the trainer does it (build the state dict, atomic write with fsync, prune),
alternating with training steps so both see the same load. The share is one save over the time of
save_every steps plus that save.

    python bench/checkpoint.py [--config ...] [--rounds 3] [--save-every 50]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as common
import torch

from latentrun.config.build import resolve_device
from latentrun.runs import checkpoint_file as checkpoint


def measure(
    config_path: str, precision: str, rounds: int, save_every: int, device: torch.device, overrides: list[str]
) -> list:
    config = common.load_config(config_path, [f"train.device={device.type}", *overrides])
    with tempfile.TemporaryDirectory() as folder:
        trainer = common.make_trainer(config, device, precision, Path(folder))
        trainer.train_step(1)  # optimizer state exists from the first step on
        trainer.state.step = 1
        save_seconds, load_seconds, step_seconds = [], [], []
        for index in range(rounds):
            step_seconds.append(common.timed(lambda: trainer.train_step(2 + index), device))
            trainer.state.step = 2 + index
            save_seconds.append(common.timed(trainer.save_checkpoint, device))
            path = trainer.checkpointer.folder / checkpoint.step_file_name(trainer.state.step)
            load_seconds.append(common.timed(lambda: trainer.load_state_dict(checkpoint.load(path)), device))
        size = path.stat().st_size
    save, step = common.median(save_seconds), common.median(step_seconds)
    return [
        Path(config_path).stem,
        f"{trainer.model.num_parameters() / 1e6:.2f}M",
        size / 2**20,
        save,
        common.median(load_seconds),
        step,
        save / (save_every * step + save),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", nargs="+", default=["experiments/latent_2digit.yaml", "experiments/latent_3digit.yaml"]
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    common.add_set(parser)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(common.machine())
    rows = [measure(path, args.precision, args.rounds, args.save_every, device, args.overrides) for path in args.config]
    print(f"{args.rounds} rounds of (training step, save, load); medians; share at save_every={args.save_every}")
    print(common.table(["config", "params", "MiB", "save s", "load s", "step s", "share of training"], rows))


if __name__ == "__main__":
    main()
