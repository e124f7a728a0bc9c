"""The multiplication task: vocabulary, encoding, per-step batches and held-out splits.

Every batch is a pure function of its coordinates, so nothing about the data stream needs saving:
the training batch of step `s` on rank `r` comes from a generator seeded by `(seed, s, r)`, and the
validation and test splits from `(seed, split)`. A pair (a, b) belongs to the held-out set when a
hash of the pair falls below `holdout_fraction`; training never draws such a pair, so "held-out"
holds at every operand length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from latentrun.core.errors import ProblemError as ProblemError  # defined there, still importable from here
from latentrun.core.registry import DATASETS
from latentrun.core.text import printable
from latentrun.task.problems import read_problems

MUL_TOKEN = 10
EQ_TOKEN = 11
PAD_TOKEN = 12
VOCAB_SIZE = 13

_TRAIN_STREAM, _VAL_STREAM, _TEST_STREAM = 0, 1, 2
# ASCII digits only: \d would also take '٣' or '３', which int() reads but nobody means.
_PROBLEM = re.compile(r"[ \t]*([0-9]+)[ \t]*[*xX×][ \t]*([0-9]+)[ \t]*")
_MAX_DRAWS = 10_000  # rejection rounds before concluding a split can't be filled


@dataclass(frozen=True)
class Batch:
    """Operands with their encoded prompt and answer; all tensors on one device."""

    a: Tensor  # (B,) int64
    b: Tensor  # (B,) int64
    prompt: Tensor  # (B, Tp) int64: a * b =
    answer: Tensor  # (B, P) int64: product digits

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (self.a, self.b, self.prompt, self.answer)))

    def __len__(self) -> int:
        return self.a.shape[0]

    def slice(self, start: int, stop: int) -> Batch:
        return Batch(self.a[start:stop], self.b[start:stop], self.prompt[start:stop], self.answer[start:stop])


def stream_generator(*coordinates: int) -> torch.Generator:
    """A CPU generator seeded from integer coordinates such as (seed, stream, step, rank).

    SeedSequence mixes the coordinates so that neighbouring steps get unrelated streams. Batches are
    drawn on the CPU and then moved, so a run draws the same data on every device.
    """
    state = np.random.SeedSequence(list(coordinates)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def pair_hash(a: Tensor, b: Tensor) -> Tensor:
    """A uniform value in [0, 1) per operand pair (splitmix64 of the pair), float64, independent of the seed."""
    key = a.cpu().numpy().astype(np.uint64) << np.uint64(32) | b.cpu().numpy().astype(np.uint64)
    with np.errstate(over="ignore"):
        key = key + np.uint64(0x9E3779B97F4A7C15)
        key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        key = key ^ (key >> np.uint64(31))
    return torch.from_numpy((key >> np.uint64(11)).astype(np.float64) / float(1 << 53))


@DATASETS.register("multiplication")
class MultiplicationTask:
    """Encodes `a*b=` prompts and product answers and draws batches and splits of them."""

    def __init__(
        self,
        min_digits: int,
        max_digits: int,
        operand_width: int | None,
        product_width: int | None,
        lsb_first: bool,
        zero_pad: bool,
        sampling: str,
        holdout_fraction: float,
        val_size: int,
        test_size: int,
        exclude: Sequence[str],
        *,
        seed: int,
    ) -> None:
        self.min_digits = min_digits
        self.max_digits = max_digits
        self.operand_width = operand_width or max_digits
        self.product_width = product_width or 2 * self.operand_width
        self.lsb_first = lsb_first
        self.zero_pad = zero_pad
        self.sampling = sampling
        self.holdout_fraction = holdout_fraction
        self.split_sizes = {"val": val_size, "test": test_size}
        self.seed = seed
        self.vocab_size = VOCAB_SIZE
        self.prompt_len = 2 * self.operand_width + 2
        self.answer_len = self.product_width
        self._splits: dict[str, Batch] = {}
        # Pairs of other people's test sets (dataset.exclude), as sorted a << 32 | b keys: never
        # trained on and never in a split, so that grading on those files measures held-out skill.
        keys: set[int] = set()
        for path in exclude:
            keys |= read_problems(path).keys()
        self.excluded = np.array(sorted(keys), dtype=np.int64)

    # ---- encoding -------------------------------------------------------------------------
    def _digits(self, values: Tensor, width: int) -> Tensor:
        """(B,) integers → (B, width) digit tokens in the configured order and padding."""
        powers = 10 ** torch.arange(width, dtype=torch.int64)
        digits = values[:, None] // powers % 10  # (B, width), least significant first
        if not self.zero_pad:
            length = torch.clamp(torch.floor(torch.log10(values.clamp(min=1).double())).long() + 1, min=1)
            digits = torch.where(torch.arange(width)[None, :] < length[:, None], digits, PAD_TOKEN)
        return digits if self.lsb_first else digits.flip(1)

    def encode(self, a: Tensor, b: Tensor) -> Batch:
        """Prompt `a*b=` and answer `a·b` for (B,) int64 operands on the CPU."""
        n = a.shape[0]
        prompt = torch.cat(
            [
                self._digits(a, self.operand_width),
                torch.full((n, 1), MUL_TOKEN),
                self._digits(b, self.operand_width),
                torch.full((n, 1), EQ_TOKEN),
            ],
            dim=1,
        )
        return Batch(a, b, prompt, self._digits(a * b, self.product_width))

    def digit_places(self) -> tuple[list[int], list[int]]:
        """Place ids of the prompt's and the answer's positions, for place-value position embeddings
        (Abacus): 1 + the power of ten a position's digit stands for within its operand or the
        product, 0 for `*` and `=`. Fields have fixed widths, so the ids depend on the position only."""

        operand = self.number_places(self.operand_width)
        return operand + [0] + operand + [0], self.number_places(self.product_width)

    def number_places(self, width: int) -> list[int]:
        """Place ids (1 + power of ten) of a `width`-digit number's tokens as `number_tokens` writes them."""
        places = list(range(1, width + 1))  # least significant first
        return places if self.lsb_first else places[::-1]

    def number_tokens(self, values: Tensor, width: int) -> Tensor:
        """(B,) non-negative integers → (B, width) tokens written as the task writes its numbers
        (digit order and padding), for targets beside the product such as a written chain."""
        return self._digits(values, width)

    def decode(self, digits: Tensor) -> Tensor:
        """(B, W) digit tokens in the task's order → (B,) integers; padding reads as 0."""
        ordered = digits if self.lsb_first else digits.flip(1)
        values = torch.where(ordered < 10, ordered, 0).to(torch.int64)
        powers = 10 ** torch.arange(ordered.shape[1], dtype=torch.int64, device=digits.device)
        return (values * powers).sum(dim=1)

    def parse_problem(self, text: str) -> tuple[int, int]:
        """'37*45' → (37, 45); ProblemError when the text is not a product of two non-negative integers that fit the task."""
        shown = printable(text, 40)
        match = _PROBLEM.fullmatch(text)
        if match is None:
            raise ProblemError(f"'{shown}': expected two non-negative integers joined by '*' (or 'x'), like 37*45")
        for digits in match.groups():
            significant = digits.lstrip("0") or "0"
            # Checked on the text: int() of a 5000-digit string fails with a message about Python, not the input.
            if len(significant) > self.operand_width:
                raise ProblemError(
                    f"'{shown}': {printable(significant, 40)} has {len(significant)} digits but this run's operands "
                    f"hold at most {self.operand_width} (dataset.operand_width)"
                )
        a, b = (int(group) for group in match.groups())
        return a, b

    # ---- sampling -------------------------------------------------------------------------
    def _draw_operands(self, n: int, generator: torch.Generator) -> Tensor:
        """(n,) operands with min_digits..max_digits digits."""
        if self.sampling == "digits":
            num_digits = torch.randint(self.min_digits, self.max_digits + 1, (n,), generator=generator)
        else:
            num_digits = torch.full((n,), -1)
        low_digits = torch.where(num_digits > 0, num_digits, self.min_digits)
        high_digits = torch.where(num_digits > 0, num_digits, self.max_digits)
        low = torch.where(low_digits == 1, 0, 10 ** (low_digits - 1))
        span = 10**high_digits - low
        return low + (torch.rand(n, dtype=torch.float64, generator=generator) * span).long()

    def is_held_out(self, a: Tensor, b: Tensor) -> Tensor:
        """(B,) bool: pairs of the validation and test splits, which training never sees."""
        return pair_hash(a, b) < self.holdout_fraction

    def is_excluded(self, a: Tensor, b: Tensor) -> Tensor:
        """(B,) bool: pairs of the files in dataset.exclude, which neither training nor a split holds."""
        if self.excluded.size == 0:
            return torch.zeros(a.shape, dtype=torch.bool)
        keys = (a.cpu() << 32 | b.cpu()).numpy()
        return torch.from_numpy(np.isin(keys, self.excluded))

    def train_batch(self, step: int, batch_size: int, rank: int = 0) -> Batch:
        """The training batch of `step` on `rank`: a pure function of (seed, step, rank), held-out pairs excluded."""
        generator = stream_generator(self.seed, _TRAIN_STREAM, step, rank)
        a = self._draw_operands(batch_size, generator)
        b = self._draw_operands(batch_size, generator)
        for _ in range(_MAX_DRAWS):
            redraw = self.is_held_out(a, b) | self.is_excluded(a, b)
            count = int(redraw.sum())
            if count == 0:
                return self.encode(a, b)
            a[redraw] = self._draw_operands(count, generator)
            b[redraw] = self._draw_operands(count, generator)
        raise ValueError("dataset: could not draw a training pair outside the held-out set; lower holdout_fraction")

    def split(self, name: str) -> Batch:
        """The 'val' or 'test' split: held-out pairs, a pure function of (seed, split), cached."""
        if name not in self._splits:
            self._splits[name] = self._draw_split(name)
        return self._splits[name]

    def _draw_split(self, name: str) -> Batch:
        """Distinct held-out pairs in draw order; fewer than asked when the range holds fewer."""
        size = self.split_sizes[name]
        stream = _VAL_STREAM if name == "val" else _TEST_STREAM
        generator = stream_generator(self.seed, stream)
        # Val takes the lower half of the held-out hash range and test the upper half, so they never share a pair.
        low, high = (
            (0.0, self.holdout_fraction / 2) if name == "val" else (self.holdout_fraction / 2, self.holdout_fraction)
        )
        chunk = max(4096, int(4 * size / self.holdout_fraction))
        keys = np.empty(0, dtype=np.int64)
        for _ in range(_MAX_DRAWS):
            a = self._draw_operands(chunk, generator)
            b = self._draw_operands(chunk, generator)
            h = pair_hash(a, b)
            keep = (h >= low) & (h < high) & ~self.is_excluded(a, b)
            drawn = np.concatenate([keys, ((a[keep] << 32) | b[keep]).numpy()])
            _, first = np.unique(drawn, return_index=True)
            grown = np.sort(first).size > keys.size
            keys = drawn[np.sort(first)]
            # A whole chunk adding no new pair means the range's held-out pairs are exhausted.
            if keys.size >= size or (keys.size and not grown):
                chosen = torch.from_numpy(keys[:size])
                return self.encode(chosen >> 32, chosen & 0xFFFF_FFFF)
        raise ValueError(
            f"dataset: the {name} split found no held-out pairs with {self.min_digits}..{self.max_digits} digits; "
            "raise holdout_fraction or max_digits"
        )
