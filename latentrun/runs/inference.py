"""Predict with a trained run's model (rebuilt by RunDir.trained_model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from latentrun.core.registry import LOSSES
from latentrun.runs.run_dir import RunDir
from latentrun.task.multiplication import MultiplicationTask, ProblemError
from latentrun.task.problems import ProblemFileError, file_digest, read_problems
from latentrun.train.metrics import evaluate

SPLITS = ("test", "val")


def predict(task: MultiplicationTask, model: nn.Module, problems: Sequence[str]) -> list[int]:
    """Greedy products for texts like '37*45'; ProblemError (naming every bad one) before any compute."""
    pairs, problems_found = [], []
    for text in problems:
        try:
            pairs.append(task.parse_problem(text))
        except ValueError as error:
            problems_found.append(str(error))
    if problems_found:
        raise ProblemError("\n".join(problems_found))
    device = next(model.parameters()).device
    a, b = (torch.tensor(values, dtype=torch.int64) for values in zip(*pairs))
    batch = task.encode(a, b).to(device)
    with torch.no_grad():
        return task.decode(model.generate(batch.prompt)).tolist()  # type: ignore[operator]  # nn.Module's __getattr__ hides the model's own methods


def evaluate_split(run_dir: Path, split: str, batch_size: int = 1000) -> dict[str, float | int]:
    """The run's best checkpoint graded on its `test` or `val` split: exact match, digit accuracy
    and loss (latent accuracy with a probe), with the step of the weights and the number of pairs.

    The test split is the figure of record; val is what chose the checkpoint, so its figure is optimistic.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    run = RunDir(run_dir)
    task, model, state = run.trained_model()
    config = run.config()
    pairs = task.split(split)
    device = next(model.parameters()).device
    metrics = evaluate(model, pairs, LOSSES.build(config["loss"]), batch_size, device, task.operand_width, split)
    return {**{tag.split("/", 1)[1]: value for tag, value in metrics.items()}, "step": state["step"], "pairs": len(pairs)}


def evaluate_file(run_dir: Path, path: Path, batch_size: int = 1000) -> dict[str, float | int | str]:
    """The run's best checkpoint graded on the problems of a file (an external test set such as
    Deng et al.'s, see task/problems.py): exact match, digit accuracy and loss, with the step of
    the weights, the number of problems and the file's SHA-256. The file is read and checked
    before the model is loaded."""
    problems = read_problems(path)
    run = RunDir(run_dir)
    config = run.config()
    width = config["dataset"]["operand_width"] or config["dataset"]["max_digits"]
    longest = max(len(str(int(value))) for value in torch.cat([problems.a, problems.b]).tolist())
    if longest > width:
        raise ProblemFileError(
            f"{path}: has operands of {longest} digits, but {run.name}'s operands hold at most {width} "
            "(dataset.operand_width)"
        )
    task, model, state = run.trained_model()
    device = next(model.parameters()).device
    metrics = evaluate(
        model, task.encode(problems.a, problems.b), LOSSES.build(config["loss"]), batch_size, device,
        task.operand_width, "file",
    )
    return {
        **{tag.split("/", 1)[1]: value for tag, value in metrics.items()},
        "step": state["step"],
        "problems": len(problems),
        "file": str(path.resolve()),
        "sha256": file_digest(path),
    }
