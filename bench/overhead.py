"""Runner overhead: seconds per step of `Trainer.fit` against a bare PyTorch loop.

Both train the same model object with the same optimizer and scheduler, interleaved step by step
inside one `fit` call: next to each runner step (before it on odd steps, after it on even ones), one
bare step runs and is timed on its own. So the two loops share every second of the machine's load, which on a shared machine swings far more
than the overhead being measured. The bare step reuses one pre-drawn batch and does forward, loss,
backward, clip, optimizer and scheduler step, nothing else. The runner's share is everything else
in `fit`: drawing each step's batch, the loss guard, logging (log_every), TensorBoard scalars and
checkpoints (save_every) and evaluation (eval_every), at the config's settings. By default the
window is eval_every steps, so it holds one evaluation; a shorter --steps times an evaluation
separately, between bare steps, and amortizes it over eval_every.

    python bench/overhead.py [--config experiments/latent_2digit.yaml] [--steps N] [--set train.eval_every=250]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common
import torch
from loguru import logger

from latentrun.config.build import resolve_device
from latentrun.report.tensorboard import TensorBoardLogger
from latentrun.train.precision import MixedPrecision


def bare_step(trainer, batch, max_grad_norm: float, amp: MixedPrecision) -> None:
    """The step anyone would write by hand, on the trainer's own model (compiled when the runner's
    is), optimizer and scheduler."""
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    with amp.autocast():
        loss = trainer.loss_fn(trainer.forward(batch.prompt, batch.answer), batch.answer).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    trainer.scheduler.step()


def measure(config_path: str, precision: str, steps: int | None, device_name: str, overrides: list[str]) -> list:
    """One table row; `steps` None means eval_every steps, so that the window holds one evaluation."""
    config = common.load_config(config_path, [f"train.device={device_name}", *overrides])
    device = resolve_device(device_name)
    train = config["train"]
    steps = steps or train["eval_every"]
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        sink = logger.add(run_dir / "train.log", level="INFO")  # a run logs to its train.log too
        metric_logger = TensorBoardLogger(run_dir)  # a run's rank 0 writes TensorBoard events too
        trainer = common.make_trainer(config, device, precision, run_dir, metric_logger)
        amp = MixedPrecision(precision, device)
        batch = trainer.task.train_batch(1, train["batch_size"]).to(device)
        for step in (1, 2):  # warm-up: kernels, allocator, lazy inits; leaves state.step at 0
            trainer.train_step(step)
            bare_step(trainer, batch, train["max_grad_norm"], amp)

        bare_seconds: list[float] = []
        runner_step = trainer.train_step

        def run_bare() -> None:
            bare_seconds.append(common.timed(lambda: bare_step(trainer, batch, train["max_grad_norm"], amp), device))

        step_seconds: list[float] = []

        def run_runner_step(step: int):
            start = time.perf_counter()
            result = runner_step(step)
            common.synchronize(device)
            step_seconds.append(time.perf_counter() - start)
            return result

        def with_bare_twin(step: int):
            # The bare step goes before the runner's on odd steps and after it on even ones: whichever
            # runs second finds the thread pool awake and the weights in cache, so alternating the
            # order keeps that advantage from favouring one side.
            if step % 2:
                run_bare()
                return run_runner_step(step)
            result = run_runner_step(step)
            run_bare()
            return result

        trainer.train_step = with_bare_twin
        fit_seconds = common.timed(lambda: trainer.fit(stop_at=steps), device)
        trainer.train_step = runner_step

        # A window shorter than eval_every holds no evaluation: time one between bare steps, so that
        # both see the same load, and amortize it over eval_every steps.
        evaluations = steps // train["eval_every"]
        eval_seconds, nearby_bare = [], []
        for _ in range(0 if evaluations else 2):
            nearby_bare.append(common.timed(lambda: bare_step(trainer, batch, train["max_grad_norm"], amp), device))
            eval_seconds.append(common.timed(lambda: trainer._evaluate(trainer.state.step), device))
        metric_logger.close()
        logger.remove(sink)
    bare = sum(bare_seconds) / steps
    runner = (fit_seconds - sum(bare_seconds)) / steps
    loop = runner - sum(step_seconds) / steps  # evaluation, logging, TensorBoard, checkpoints, bookkeeping
    if evaluations:
        with_eval = runner / bare
    else:
        with_eval = runner / bare + common.median(eval_seconds) / train["eval_every"] / common.median(nearby_bare)
    return [
        Path(config_path).stem,
        precision,
        steps,
        train["log_every"],
        train["save_every"],
        train["eval_every"],
        bare,
        runner,
        sum(step_seconds) / steps / bare,
        loop * 1e3,
        runner / bare,
        "in window" if evaluations else "amortized",
        with_eval,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["experiments/latent_2digit.yaml"])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, help="runner steps, each with a bare twin (default: eval_every)")
    common.add_set(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logger.remove()
    print(common.machine())
    started = time.perf_counter()
    rows = [
        measure(path, precision, args.steps, args.device, args.overrides)
        for path in args.config
        for precision in args.precision
    ]
    print(f"bare and runner steps interleaved one by one; {time.perf_counter() - started:.0f} s in all")
    print(
        common.table(
            [
                "config",
                "precision",
                "steps",
                "log_every",
                "save_every",
                "eval_every",
                "bare s/step",
                "runner s/step",
                "train_step/bare",
                "loop ms/step",
                "ratio",
                "eval",
                "ratio with eval",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
