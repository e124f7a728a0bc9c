"""A trained run's model: rebuilt from its config and checkpoints, then used to predict and to grade
a split or a problem file. The torch side of a run directory, which RunDir itself leaves out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from latentrun.config import build
from latentrun.core.registry import LOSSES
from latentrun.models.protocol import AnyModel
from latentrun.runs import checkpoint_file
from latentrun.runs.run_dir import RunDir
from latentrun.task.multiplication import MultiplicationTask, ProblemError
from latentrun.task.problems import ProblemFileError, file_digest, read_problems
from latentrun.train.checkpoints_protocol import CheckpointError, State
from latentrun.train.metrics import evaluate

SPLITS = ("test", "val")


def trained_weights(run: RunDir, which: str = "best") -> State:
    """The weights to predict and evaluate with: best.pt, or before any evaluation the newest
    step checkpoint; CheckpointError when there is neither. `which` = latest or step_N names a step
    checkpoint instead (its live weights; MissingCheckpoint when the run does not keep it)."""
    if which != "best":
        return checkpoint_file.load(checkpoint_file.find(run.checkpoint_dir, which))
    best = run.checkpointer().best()
    if best is not None:
        return best
    found = checkpoint_file.step_checkpoints(run.checkpoint_dir)
    if not found:
        raise CheckpointError(f"{run.path}: no checkpoint yet; train the run first")
    return checkpoint_file.load(found[-1][1])


def build_model(run: RunDir, state: State | None = None) -> tuple[MultiplicationTask, AnyModel]:
    """The run's task and model as its config builds them, with `state`'s weights when given."""
    config = run.config()
    task = build.build_task(config)
    model = build.build_model(config, task)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            reason = str(error).splitlines()[0]
            raise CheckpointError(f"{run.path}: checkpoint does not fit its config: {reason}") from None
    return task, model


def trained_model(
    run: RunDir, device: torch.device | str = "cpu", which: str = "best"
) -> tuple[MultiplicationTask, AnyModel, State]:
    """(task, model in eval mode on `device`, checkpoint) from `trained_weights(run, which)`."""
    state = trained_weights(run, which)
    task, model = build_model(run, state)
    return task, model.to(device).eval(), state


def predict(task: MultiplicationTask, model: AnyModel, problems: Sequence[str]) -> list[int]:
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
        return task.decode(model.generate(batch.prompt)).tolist()


def evaluate_split(run_dir: Path, split: str, batch_size: int = 1000, which: str = "best") -> dict[str, float | int]:
    """The run's best checkpoint (or `which`, see trained_weights) graded on its `test` or `val` split: exact match, digit accuracy
    and loss (latent accuracy with a probe), with the step of the weights and the number of pairs.

    The test split is the figure of record; val is what chose the checkpoint, so its figure is optimistic.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    run = RunDir(run_dir)
    task, model, state = trained_model(run, which=which)
    config = run.config()
    pairs = task.split(split)
    device = next(model.parameters()).device
    metrics = evaluate(model, pairs, LOSSES.build(config["loss"]), batch_size, device, task.operand_width, split)
    return {
        **{tag.split("/", 1)[1]: value for tag, value in metrics.items()},
        "step": state["step"],
        "checkpoint": which,
        "pairs": len(pairs),
    }


def evaluate_file(
    run_dir: Path, path: Path, batch_size: int = 1000, which: str = "best"
) -> dict[str, float | int | str]:
    """The run's best checkpoint (or `which`, see trained_weights) graded on the problems of a file (an external test set such as
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
    task, model, state = trained_model(run, which=which)
    device = next(model.parameters()).device
    metrics = evaluate(
        model,
        task.encode(problems.a, problems.b),
        LOSSES.build(config["loss"]),
        batch_size,
        device,
        task.operand_width,
        "file",
    )
    return {
        **{tag.split("/", 1)[1]: value for tag, value in metrics.items()},
        "step": state["step"],
        "checkpoint": which,
        "problems": len(problems),
        "file": str(path.resolve()),
        "sha256": file_digest(path),
    }
