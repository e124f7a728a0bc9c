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
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as common
import torch
from mfu import phases


def measure(config_path: str, threads: list[int], rounds: int, steps: int, overrides: list[str]) -> list[list]:
    config = common.load_config(config_path, ["train.device=cpu", *overrides])
    device = torch.device("cpu")
    per_update: dict[int, dict[str, float]] = {count: {} for count in threads}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        kinds = phases(config)
        for phase, first in kinds.items():
            trainer = common.make_trainer(config, device, config["train"]["precision"], Path(folder))
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
    forced = kinds.get("forced") and config["train"]["latent_forcing"]["start_step"] or 0
    for count in threads:
        rates = per_update[count]
        free_rate = rates.get("free", rates.get("all", rates.get("forced")))
        hours = (forced * rates.get("forced", free_rate) + (total - forced) * free_rate) / 3600
        rows.append([Path(config_path).stem, f"{total} updates", count, "", f"{hours:.2f} h projected"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["experiments/best_4digit_latent.yaml"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="updates timed per round")
    common.add_set(parser)
    args = parser.parse_args()
    print(common.machine())
    rows = [row for path in args.config for row in measure(path, args.threads, args.rounds, args.steps, args.overrides)]
    print(f"{args.rounds} rounds of {args.steps} updates per thread count, alternated; medians")
    print(common.table(["config", "steps", "threads", "s/update", "speed-up"], rows))


if __name__ == "__main__":
    main()
