"""Inference speed of each method: problems answered per second by greedy decoding on one core.

Decoding writes a fixed number of tokens per problem for every model here (the chain a layout
keeps, then the product's digits), so its cost depends on the architecture and the final layout,
not on what the weights learned: each experiment's model is built from its file, put in its
curriculum's final stage (what a finished run decodes with: internalization writes no chain,
Coconut thinks every step) and timed on held-out problems. The clock is the process's CPU time on
one thread, not the wall clock: on this shared machine the wall clock counts the seconds other
processes held the core, while the CPU seconds of one single-threaded decode are what it costs
(the figure is "problems per CPU-second", equal to problems/s on an idle core). The experiments
still run in alternation, round by round, so that cache and frequency effects fall on all alike.

    python bench/inference.py experiments/best_4digit_cot_exact.yaml experiments/best_4digit_internalized.yaml [--batch 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import _common as common
import torch

from latentrun.config.build import build_curriculum, build_model, build_task


def decoder(config_path: str, batch: int):
    """(name, generated tokens, thoughts, parameters, a function that decodes one batch)."""
    config = common.load_config(config_path, ["train.device=cpu"])
    task = build_task(config)
    model = build_model(config, task).eval()
    curriculum = build_curriculum(config, task)
    if curriculum is not None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # begin_step may clear its state; nothing steps
        curriculum.begin_step(curriculum.final_stage_step, model, optimizer)
    prompt = task.split("test").prompt[:batch]  # (B, Tp)

    def decode() -> None:
        with torch.no_grad():
            model.generate(prompt)

    generated = getattr(model, "generated_tokens", task.answer_len)
    return config["experiment"], generated, getattr(model, "thoughts", 0), model.num_parameters(), len(prompt), decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--batch", type=int, default=500, help="problems decoded at once (default 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    decoders = [decoder(path, args.batch) for path in args.configs]
    for *_, decode in decoders:
        decode()  # warm-up: first calls allocate
    seconds: dict[str, list[float]] = {name: [] for name, *_ in decoders}
    for round_ in range(args.rounds):
        order = decoders if round_ % 2 == 0 else decoders[::-1]
        for name, *_, decode in order:
            start = time.process_time()
            decode()
            seconds[name].append(time.process_time() - start)
    print(common.machine())
    rows = []
    for name, generated, thoughts, parameters, problems, _ in decoders:
        median = common.median(seconds[name])
        rows.append(
            [name, f"{parameters:,}", generated, thoughts, problems, f"{median:.3f}", f"{problems / median:,.0f}"]
        )
    print(
        common.table(
            [
                "experiment",
                "params",
                "generated tokens",
                "thoughts",
                "batch",
                "CPU s a batch",
                "problems per CPU-second",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
