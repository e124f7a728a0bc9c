"""Runner overhead: seconds per step of `Trainer.fit` against a bare PyTorch loop.

Both train the same model object with the same optimizer and scheduler, interleaved step by step
inside one `fit` call: before each runner step, one bare step runs and is timed on its own. So the
two loops share every second of the machine's load, which on a shared machine swings far more
than the overhead being measured. The bare step reuses one pre-drawn batch and does forward, loss,
backward, clip, optimizer and scheduler step, nothing else. The runner's share is everything else
in `fit`: drawing each step's batch, the loss guard, logging (log_every), TensorBoard scalars and
checkpoints (save_every), at the config's settings. Evaluation (every eval_every steps, 250 by
default) is timed separately, next to bare steps, and amortized: the table shows the ratio without
and with it.

    python bench/overhead.py [--config experiments/latent_2digit.yaml] [--steps 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common
import torch
from loguru import logger
from torch.utils.tensorboard import SummaryWriter

from latentrun.build import resolve_device
from latentrun.precision import MixedPrecision


def bare_step(trainer, batch, max_grad_norm: float, amp: MixedPrecision) -> None:
    """The step anyone would write by hand, on the trainer's own model, optimizer and scheduler."""
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    with amp.autocast():
        loss = trainer.loss_fn(model(batch.prompt, batch.answer), batch.answer).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    trainer.scheduler.step()


def measure(config_path: str, precision: str, steps: int, device_name: str, overrides: list[str]) -> list:
    config = common.load_config(config_path, [f"train.device={device_name}", *overrides])
    device = resolve_device(device_name)
    train = config["train"]
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        sink = logger.add(run_dir / "train.log", level="INFO")  # a run logs to its train.log too
        writer = SummaryWriter(str(run_dir))
        trainer = common.make_trainer(config, device, precision, run_dir, writer)
        amp = MixedPrecision(precision, device)
        batch = trainer.task.train_batch(1, train["batch_size"]).to(device)
        for step in (1, 2):  # warm-up: kernels, allocator, lazy inits; leaves state.step at 0
            trainer.train_step(step)
            bare_step(trainer, batch, train["max_grad_norm"], amp)

        bare_seconds: list[float] = []
        runner_step = trainer.train_step

        def bare_then_runner_step(step: int):
            bare_seconds.append(common.timed(lambda: bare_step(trainer, batch, train["max_grad_norm"], amp), device))
            return runner_step(step)

        trainer.train_step = bare_then_runner_step
        fit_seconds = common.timed(lambda: trainer.fit(stop_at=steps), device)
        trainer.train_step = runner_step

        # Evaluation, between bare steps so that both are timed under the same load.
        eval_seconds, nearby_bare = [], []
        for _ in range(2):
            nearby_bare.append(common.timed(lambda: bare_step(trainer, batch, train["max_grad_norm"], amp), device))
            eval_seconds.append(common.timed(lambda: trainer._evaluate(trainer.state.step), device))
        writer.close()
        logger.remove(sink)
    bare = sum(bare_seconds) / steps
    runner = (fit_seconds - sum(bare_seconds)) / steps
    eval_share = common.median(eval_seconds) / train["eval_every"] / common.median(nearby_bare)
    return [Path(config_path).stem, precision, steps, train["log_every"], train["save_every"], bare, runner,
            runner / bare, common.median(eval_seconds), runner / bare + eval_share]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["experiments/latent_2digit.yaml"])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=100, help="runner steps, each with a bare twin")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logger.remove()
    print(common.machine())
    started = time.perf_counter()
    rows = [measure(path, precision, args.steps, args.device, args.overrides)
            for path in args.config for precision in args.precision]
    print(f"bare and runner steps interleaved one by one; {time.perf_counter() - started:.0f} s in all")
    print(common.table(["config", "precision", "steps", "log_every", "save_every", "bare s/step", "runner s/step",
                        "ratio", "eval s", "ratio with eval amortized"], rows))


if __name__ == "__main__":
    main()
