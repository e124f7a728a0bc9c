"""The accuracy grid: which pairs each cell grades, how it is scored, and what it writes."""

import json

import pytest
import torch
from torch import nn

from latentrun.report.grid import accuracy_grid, cell_pairs, format_grid, grid_record, write_grid
from latentrun.task.multiplication import MultiplicationTask


def task(**overrides) -> MultiplicationTask:
    params = dict(
        min_digits=1,
        max_digits=2,
        operand_width=3,
        product_width=None,
        lsb_first=True,
        zero_pad=True,
        sampling="value",
        holdout_fraction=0.1,
        val_size=10,
        test_size=10,
        exclude=(),
        seed=0,
    )
    params.update(overrides)
    return MultiplicationTask(**params)


class Oracle(nn.Module):
    """Answers from the prompt by real multiplication, wrong whenever a's least significant digit is
    in `wrong_digits`: a model whose grid is known in advance."""

    def __init__(self, task: MultiplicationTask, wrong_digits: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.task, self.wrong_digits = task, wrong_digits
        self.weight = nn.Parameter(torch.zeros(1))

    def generate(self, prompt: torch.Tensor) -> torch.Tensor:
        width = self.task.operand_width
        a, b = self.task.decode(prompt[:, :width]), self.task.decode(prompt[:, width + 1 : 2 * width + 1])
        answer = self.task.encode(a, b).answer
        wrong = torch.isin(a % 10, torch.tensor(self.wrong_digits))
        answer[wrong, 0] = (answer[wrong, 0] + 1) % 10
        return answer


def test_small_cells_are_graded_on_every_pair_with_exact_digit_counts():
    a, b = cell_pairs(task(), 1, 2, samples=1000)
    assert len(a) == 10 * 90 and len(set(zip(a.tolist(), b.tolist()))) == 900
    assert a.min() == 0 and a.max() == 9 and b.min() == 10 and b.max() == 99


def test_large_cells_are_sampled_deterministically_with_exact_digit_counts():
    a, b = cell_pairs(task(), 3, 2, samples=500)
    assert len(a) == 500 and a.min() >= 100 and a.max() <= 999 and b.min() >= 10 and b.max() <= 99
    again = cell_pairs(task(), 3, 2, samples=500)
    assert torch.equal(a, again[0]) and torch.equal(b, again[1])
    assert not torch.equal(a, cell_pairs(task(seed=1), 3, 2, samples=500)[0])


def test_grid_scores_cells_and_marks_training_overlap():
    t = task()
    cells = accuracy_grid(t, Oracle(t, wrong_digits=(3,)), max_digits=4, samples=400)
    by = {(c.digits_a, c.digits_b): c for c in cells}
    assert len(cells) == 16
    assert [c.encodable for c in cells].count(False) == 7  # any operand of 4 digits > operand_width 3
    assert by[(4, 1)].exact_match is None and by[(1, 4)].samples == 0
    for key in [(1, 1), (1, 2), (2, 2), (3, 3), (3, 1)]:  # a ends in 3 one time in ten
        assert by[key].exact_match == pytest.approx(0.9, abs=0.05)
    assert by[(1, 1)].exact_match == 0.9 and by[(1, 1)].samples == 100
    inside, outside = by[(2, 1)], by[(3, 2)]
    assert 0.8 < inside.trained_share < 1.0 and inside.held_out_samples > 0  # hash holds out about 10%
    assert inside.trained_share == pytest.approx(1 - inside.held_out_samples / inside.samples)
    assert outside.trained_share == 0.0  # 3 digits were never trained, held out or not
    perfect = accuracy_grid(t, Oracle(t), max_digits=2, samples=50)
    assert all(c.exact_match == 1.0 and c.held_out_exact_match in (1.0, None) for c in perfect)


def test_grid_files_text_and_tensorboard_image(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = task()
    cells = accuracy_grid(t, Oracle(t), max_digits=4, samples=20)
    record = grid_record(cells, run="r", step=12, max_digits=4, samples=20, task=t)
    json_path, png_path = write_grid(tmp_path, record, cells)
    saved = json.loads(json_path.read_text())
    assert saved["step"] == 12 and saved["trained_digits"] == [1, 2] and len(saved["cells"]) == 16
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    assert accumulator.Tags()["images"] == ["eval/grid"]
    text = format_grid(cells, 4)
    assert "100.0%*" in text and "n/a" in text and text.splitlines()[0].split()[1:] == ["1", "2", "3", "4"]


def test_writing_a_grid_leaves_the_process_matplotlib_backend_alone(tmp_path):
    """Eval runs inside notebooks and other programs; their chosen backend is not ours to switch."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        t = task()
        cells = accuracy_grid(t, Oracle(t), max_digits=2, samples=20)
        _, png_path = write_grid(tmp_path, grid_record(cells, run="r", step=1, max_digits=2, samples=20, task=t), cells)
        assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_heatmap_puts_row_one_at_the_top_like_the_text_grid():
    """The heatmap had row 1 at the bottom while the printed grid has it on top."""
    from latentrun.report.grid import heatmap

    t = task()
    cells = accuracy_grid(t, Oracle(t), max_digits=3, samples=20)
    figure = heatmap(cells, 3, "orientation")
    axes = figure.axes[0]
    top, bottom = axes.get_ylim()[1], axes.get_ylim()[0]
    assert top < bottom  # y grows downwards: row index 0 (digits of a = 1) is drawn on top
    assert format_grid(cells, 3).splitlines()[1].split()[0] == "1"
