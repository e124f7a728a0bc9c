"""Exact match of each run's best checkpoint on its TEST split (the figure of record).

A stop-gap for recipe search until `run.py eval RUN --split test` is on this branch:
    python bench/test_em.py RUN_DIR [RUN_DIR ...] [--test-size N]
`--test-size` redraws the test split with N pairs (same seed and hash range) for runs trained with
a smaller dataset.test_size. Prints one line per run: run, step of best.pt, test exact match, digit accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from latentrun.runs.inference import load_trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for run_dir in args.runs:
        task, model, state = load_trained(run_dir)
        if args.test_size:
            task.split_sizes["test"] = args.test_size
        split = task.split("test")
        exact = digits = 0
        with torch.no_grad():
            for start in range(0, len(split), 1000):
                batch = split.slice(start, start + 1000)
                correct = model.generate(batch.prompt) == batch.answer  # (B, P)
                exact += int(correct.all(dim=1).sum())
                digits += int(correct.sum())
        print(
            f"{run_dir.name}\tstep {state.get('step')}\ttest_em {exact / len(split):.4f}\t"
            f"digit_acc {digits / split.answer.numel():.4f}\tn {len(split)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
