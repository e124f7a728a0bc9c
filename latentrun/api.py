"""The Python API, for notebooks and scripts: `load` a trained run and ask it things, and `runs`, the
`list` table as rows.

    import latentrun
    run = latentrun.load("latest", runs_dir="runs")
    run.predict("37*45"), run.predict(["12*34", (7, 8)])   # 1665, [408, 56]
    run.evaluate(split="test")["exact_match"], run.evaluate(file="problems.txt")["exact_match"]
    latentrun.runs(experiment="smoke", columns=["optimizer.lr"])   # rows; frame=True for pandas

Everything here goes through the same code as the commands (`predict`, `eval`, `list`), so a figure
read here is the figure the command line prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentrun.report import listing, listing_filter
from latentrun.runs import run_files as runs_module

if TYPE_CHECKING:  # torch is imported by `load`, not here: `runs()` stays as light as `list`
    from latentrun.models.protocol import AnyModel
    from latentrun.runs.run_dir import RunDir
    from latentrun.task.multiplication import MultiplicationTask

Problem = str | tuple[int, int]


@dataclass(frozen=True)
class Run:
    """A trained run: its frozen config, the model of its best checkpoint (eval mode), and its task."""

    path: Path
    config: dict[str, Any]
    model: AnyModel  # an nn.Module: LatentTransformer or ChainTransformer
    task: MultiplicationTask
    step: int  # the training step of the weights in `model`
    _dir: RunDir = field(repr=False)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def meta(self) -> dict[str, Any]:
        """meta.json as it reads now (a live run rewrites it at every checkpoint)."""
        return self._dir.meta()

    def predict(self, problems: Problem | Sequence[Problem]) -> int | list[int]:
        """The greedy product of one problem ('37*45' or (37, 45)), or a list of them for a list;
        ProblemError naming every malformed problem, before any compute."""
        single = isinstance(problems, str) or (isinstance(problems, tuple) and _is_pair(problems))
        batch: list[Problem] = [problems] if single else list(problems)  # type: ignore[list-item, arg-type]
        texts = [_text(problem) for problem in batch]
        from latentrun.runs import inference

        products = inference.predict(self.task, self.model, texts)
        return products[0] if single else products

    def evaluate(self, split: str = "test", file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The best checkpoint graded as `eval` grades it: on a held-out split (`test`, the figure of
        record, or `val`): exact_match, digit_accuracy, loss, step, pairs; or, given `file`, on that
        file's problems (ICoT format or `a*b` lines): the same figures, problems, file and sha256."""
        from latentrun.runs import inference

        if file is not None:
            return inference.evaluate_file(self.path, Path(file))
        return inference.evaluate_split(self.path, split)


def _is_pair(value: tuple) -> bool:
    return len(value) == 2 and all(isinstance(item, int) for item in value)


def _text(problem: Problem) -> str:
    return problem if isinstance(problem, str) else f"{problem[0]}*{problem[1]}"


def load(run: str | os.PathLike[str] = "latest", runs_dir: str | os.PathLike[str] = "runs", device: str = "cpu") -> Run:
    """A run given as a path, an id under `runs_dir`, or `latest`, with the weights `predict` uses
    (best.pt, or the newest checkpoint before any evaluation) on `device`."""
    from latentrun.runs import inference
    from latentrun.runs.run_dir import RunDir

    path = runs_module.resolve_run_dir(os.fspath(run), Path(runs_dir))
    run_dir = RunDir(path)
    task, model, state = inference.trained_model(run_dir, device)
    return Run(path=path, config=run_dir.config(), model=model, task=task, step=int(state["step"]), _dir=run_dir)


def runs(
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    sort: str = "date",
    limit: int | None = None,
    experiment: str | None = None,
    status: str | None = None,
    launch: str | None = None,
    where: Mapping[str, Any] | None = None,
    columns: Sequence[str] = (),
    frame: bool = False,
) -> Any:
    """The `list` table: one dict per run (id, path, experiment, model, step, best_exact_match, ...),
    filtered and sorted as `list` does; `where` maps a config key to a value or a list of values
    (any of them), `columns` adds config keys. `frame=True` returns a pandas DataFrame instead, with
    the config columns by their dotted key (pandas is needed only then)."""
    wanted = {key: list(value) if isinstance(value, (list, tuple)) else [value] for key, value in (where or {}).items()}
    listing_filter.check_columns([*wanted, *columns])
    listing_filter.check_status(status)
    selection = listing_filter.Selection(experiment=experiment, status=status, launch=launch, where=wanted)
    rows = listing.list_runs(Path(runs_dir), sort, limit, selection, list(columns))
    if not frame:
        return rows
    try:
        import pandas
    except ImportError:
        raise ImportError("runs(frame=True) needs pandas (pip install pandas); without it, runs() gives rows") from None
    flat = [{**{k: v for k, v in row.items() if k != "config"}, **row.get("config", {})} for row in rows]
    return pandas.DataFrame(flat)
