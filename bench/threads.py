"""Thread scaling of a recipe's training step: seconds per update at 1 and 2 torch threads (or
any list), timed in alternation in one process, for each kind of step the recipe takes, and the
whole run's training time those rates project.

On a 2-core machine the question is whether one run on both cores beats one run a core: issue 18
budgets 2 hours of training "on the 2-core machine", and a recipe's 40,000 updates take ~1.8 h on
one uncontended core. The projection counts steps before `latent_forcing.start_step` at the forced
rate and every later one at the free-running rate (a step with any free latent runs one pass per
latent), and leaves out evaluation and checkpoints.

Run it on an idle machine: a second process on the other core makes 2 threads look worse than they
are. The load line printed first says what else was running.

    python bench/threads.py [--config experiments/best_4digit_latent.yaml] [--threads 1 2] [--rounds 7] [--steps 20]
                            [--precision fp32|bf16|fp16]

--precision defaults to each recipe's own `train.precision`; a recipe that says `auto` needs it
named, since `auto` is a choice made by timing on the machine, and this script times one choice.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as common
import torch
from mfu import phases


def projected_hours(total_steps: int, forced_steps: int, seconds_per_update: dict[str, float]) -> float:
    """Training hours for `total_steps` updates, the first `forced_steps` at the forced rate and the
    rest at the free-running one ('all' for a recipe without forcing)."""
    rates = seconds_per_update
    free_rate = rates.get("free", rates.get("all", rates.get("forced")))
    return (forced_steps * rates.get("forced", free_rate) + (total_steps - forced_steps) * free_rate) / 3600


def measure(
    config_path: str, threads: list[int], rounds: int, steps: int, overrides: list[str], precision: str | None
) -> list[list]:
    config = common.load_config(config_path, ["train.device=cpu", *overrides])
    precision = precision or config["train"]["precision"]
    if precision == "auto":
        raise SystemExit(f"{config_path}: train.precision is auto; name one with --precision fp32|bf16|fp16")
    device = torch.device("cpu")
    per_update: dict[int, dict[str, float]] = {count: {} for count in threads}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        kinds = phases(config)
        for phase, first in kinds.items():
            trainer = common.make_trainer(config, device, precision, Path(folder))
            trainer.train_step(first)  # warm-up: allocator and kernels
            next_step = first + 1

            def updates(count: int) -> None:
                nonlocal next_step
                torch.set_num_threads(count)
                for _ in range(steps):
                    trainer.train_step(next_step)
                    next_step += 1

            seconds = common.interleaved(
                {str(count): (lambda count=count: updates(count)) for count in threads}, rounds, device
            )
            for count in threads:
                per_update[count][phase] = common.median(seconds[str(count)]) / steps
            base = per_update[threads[0]][phase]
            rows += [
                [Path(config_path).stem, phase, count, per_update[count][phase], base / per_update[count][phase]]
                for count in threads
            ]
    total = config["train"]["max_steps"]
    forced = config["train"]["latent_forcing"]["start_step"] if "forced" in kinds else 0
    for count in threads:
        hours = projected_hours(total, forced, per_update[count])
        rows.append([Path(config_path).stem, f"{total} updates", count, "", f"{hours:.2f} h projected"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["experiments/best_4digit_latent.yaml"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="updates timed per round")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="default: each recipe's own")
    common.add_set(parser)
    args = parser.parse_args()
    print(common.machine())
    rows = [
        row
        for path in args.config
        for row in measure(path, args.threads, args.rounds, args.steps, args.overrides, args.precision)
    ]
    print(f"{args.rounds} rounds of {args.steps} updates per thread count, alternated; medians")
    print(common.table(["config", "steps", "threads", "s/update", "speed-up"], rows))


if __name__ == "__main__":
    main()
