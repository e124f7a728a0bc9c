"""Linear probes in closed form: ridge least squares through one SVD per (layer, position).

A digit (or carry) is read by least squares onto its one-hot code and the highest output wins (a
linear classifier); ĉ_k by plain least squares. The ridge strength is chosen, per component, from a
grid by generalized cross-validation (Golub, Heath & Wahba 1979) on the training problems alone:
with the SVD X = U S Vᵀ of the centred states, every strength costs a few small matrix products,
so there is no iterative solver, no learning rate and nothing random beyond the problem split.
Scores are on held-out problems the probe never saw: accuracy for classification targets, R² for
regression targets. `chance` is the score of a probe that ignores the state (the training
problems' most frequent class, or their mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentrun.report.probe_targets import CLASSIFICATION, Target
from latentrun.task.multiplication import stream_generator

SOLVER = (
    "ridge least squares in closed form (torch.linalg.svd, float64), classes read as the largest "
    "output of a one-hot regression; ridge strength per component by generalized cross-validation "
    "on the probe's training problems"
)
HELD_OUT_FRACTION = 0.2  # of the problems, never seen by the probes, scored on
PROBE_STREAM = 4  # random stream of the problem split, after the grid's (3) and the data's (0-2)
RIDGE_GRID = 10.0 ** torch.arange(-4.0, 4.0, dtype=torch.float64)  # x mean squared singular value
_RANK_TOLERANCE = 1e-9  # singular values below this share of the largest are directions with no spread


@dataclass(frozen=True)
class TargetScores:
    """Held-out scores of one target at every (layer, position): `scores` (layers, positions, C)."""

    target: Target
    scores: Tensor  # (Ly, T, C) float64; NaN where R² is undefined (a constant held-out target)
    chance: Tensor  # (C,)


def split_problems(count: int, seed: int) -> tuple[Tensor, Tensor]:
    """(training, held-out) indices of `count` problems, a pure function of (count, seed)."""
    order = torch.randperm(count, generator=stream_generator(seed, PROBE_STREAM))
    held_out = max(1, round(count * HELD_OUT_FRACTION))
    return order[held_out:], order[:held_out]


def fit_probes(states: Tensor, targets: list[Target], seed: int) -> list[TargetScores]:
    """One probe per (layer, position, target component) on hidden states (N, Ly, T, D)."""
    count, layers, positions, _ = states.shape
    if count < 10:
        raise ValueError(f"probing needs at least 10 problems, got {count}")
    train, test = split_problems(count, seed)
    y_train, group, sizes = _design(targets, train)
    scores = torch.empty(layers, positions, sum(len(t.components) for t in targets), dtype=torch.float64)
    for layer in range(layers):
        for position in range(positions):
            x = states[:, layer, position].double()  # (N, D)
            predicted = ridge_predict(x[train], x[test], y_train, group, len(group.unique()))
            scores[layer, position] = _score(predicted, targets, test, sizes)
    results, start = [], 0
    for target in targets:
        stop = start + len(target.components)
        results.append(TargetScores(target, scores[:, :, start:stop], _chance(target, train, test)))
        start = stop
    return results


def ridge_predict(x_train: Tensor, x_test: Tensor, y_train: Tensor, group: Tensor, groups: int) -> Tensor:
    """Ridge predictions (m, O) for states x_test (m, D) from x_train (n, D) and outputs y_train
    (n, O); output columns that share a `group` id (O,) share the strength GCV picks for them."""
    mean_x, mean_y = x_train.mean(0), y_train.mean(0)
    centred_y = y_train - mean_y  # (n, O)
    u, s, vh = torch.linalg.svd(x_train - mean_x, full_matrices=False)  # (n, r), (r,), (r, D)
    predicted = mean_y.expand(x_test.shape[0], -1).clone()  # (m, O)
    keep = s > _RANK_TOLERANCE * s[0] if s.numel() and s[0] > 0 else torch.zeros_like(s, dtype=torch.bool)
    if not keep.any():  # the state is the same for every problem: it holds nothing
        return predicted
    u, s, vh = u[:, keep], s[keep], vh[keep]
    along = u.T @ centred_y  # (r, O): the outputs along each direction of the states
    strengths = RIDGE_GRID[:, None] * (s**2).mean()  # (G, 1)
    shrink = s**2 / (s**2 + strengths)  # (G, r)
    residual = (centred_y**2).sum(0) - (2 * shrink - shrink**2) @ along**2  # (G, O)
    free = (1 - shrink.sum(1) / x_train.shape[0]).clamp(min=1e-12)  # (G,)
    gcv = residual / free[:, None] ** 2  # (G, O)
    chosen = torch.zeros(len(RIDGE_GRID), groups, dtype=torch.float64).index_add_(1, group, gcv).argmin(0)  # (C,)
    per_column = chosen[group]  # (O,)
    projected = (x_test - mean_x) @ vh.T  # (m, r)
    for index in per_column.unique():
        columns = (per_column == index).nonzero().squeeze(1)
        weights = (s / (s**2 + strengths[index]))[:, None] * along[:, columns]  # (r, |columns|)
        predicted[:, columns] += projected @ weights
    return predicted


def _design(targets: list[Target], train: Tensor) -> tuple[Tensor, Tensor, list[int]]:
    """The probes' outputs on the training problems (n, O): one-hot codes of classification
    components, values of regression ones; each column's component (O,); classes per target
    (1 for regression)."""
    columns, group, sizes, component = [], [], [], 0
    for target in targets:
        values = target.values[train]  # (n, C)
        if target.metric == CLASSIFICATION:
            classes = int(target.values.max()) + 1
            columns.append(torch.nn.functional.one_hot(values, classes).double().flatten(1))  # (n, C*classes)
        else:
            classes = 1
            columns.append(values.double())
        count = len(target.components)
        group.append(torch.arange(component, component + count).repeat_interleave(classes))
        sizes.append(classes)
        component += count
    return torch.cat(columns, dim=1), torch.cat(group), sizes


def _score(predicted: Tensor, targets: list[Target], test: Tensor, sizes: list[int]) -> Tensor:
    """Held-out score of every component (C,) from the predictions (m, O)."""
    scores, start = [], 0
    for target, classes in zip(targets, sizes):
        count = len(target.components)
        block = predicted[:, start : start + count * classes]
        truth = target.values[test]  # (m, C)
        if target.metric == CLASSIFICATION:
            guess = block.view(-1, count, classes).argmax(-1)  # (m, C)
            scores.append((guess == truth).double().mean(0))
        else:
            scores.append(r_squared(block, truth.double()))
        start += count * classes
    return torch.cat(scores)


def r_squared(predicted: Tensor, truth: Tensor) -> Tensor:
    """1 - SS_res / SS_tot per column (C,), NaN where the truth does not vary."""
    total = ((truth - truth.mean(0)) ** 2).sum(0)
    residual = ((truth - predicted) ** 2).sum(0)
    return torch.where(total > 0, 1 - residual / total.clamp(min=1e-300), torch.nan)


def _chance(target: Target, train: Tensor, test: Tensor) -> Tensor:
    """The held-out score (C,) of a probe that ignores the state."""
    seen, truth = target.values[train], target.values[test]
    if target.metric == CLASSIFICATION:
        majority = seen.mode(dim=0).values  # (C,)
        return (truth == majority).double().mean(0)
    return r_squared(seen.double().mean(0).expand_as(truth), truth.double())
