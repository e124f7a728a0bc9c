"""Files of multiplication problems written elsewhere: external test sets to grade a run on, and
pairs to keep out of training (`dataset.exclude`).

Two line formats are read, one problem per line:

- the ICoT format of Deng et al. (`../shared/data/icot/`): `a_0 a_1 ... * b_0 b_1 ...||chain #### p_0 p_1 ...`,
  every number's digits least significant first and separated by spaces; the product is checked;
- plain `a*b` (or `a x b`, most significant digit first, as people write), optionally `= product`.

Blank lines and lines starting with `#` are skipped. A line that is neither format is a
`ProblemFileError` naming the file and line, raised before any model is loaded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from latentrun.core.errors import ProblemFileError as ProblemFileError  # defined there, still importable from here

# ASCII digits only, as for `predict`: int() would read other scripts' digits too.
_ICOT_NUMBER = r"[0-9](?: [0-9])*"
_ICOT = re.compile(rf"\s*({_ICOT_NUMBER}) \* ({_ICOT_NUMBER})\s*\|\|.*?####\s*({_ICOT_NUMBER})\s*")
_PLAIN = re.compile(r"\s*([0-9]+)\s*[*xX×]\s*([0-9]+)\s*(?:=\s*([0-9]+)\s*)?")
_MAX_OPERAND_DIGITS = 9  # the task's operands are at most 9 digits (int64 products)


@dataclass(frozen=True)
class Problems:
    """The operand pairs of a problem file, in file order: (N,) int64 tensors."""

    path: Path
    a: Tensor
    b: Tensor

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def keys(self) -> set[int]:
        """Each pair as one integer a << 32 | b, the key the task compares pairs by."""
        return {(int(a) << 32) | int(b) for a, b in zip(self.a.tolist(), self.b.tolist())}


def _lsb_digits(text: str) -> int:
    """'9 1 7 3' (least significant digit first) → 3719."""
    return int("".join(reversed(text.split())))


def parse_line(line: str) -> tuple[int, int] | None:
    """(a, b) of one line, None for a blank or comment line; ValueError saying what is wrong."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    if "||" in line or "####" in line:
        match = _ICOT.fullmatch(line)
        if match is None:
            raise ValueError("expected the ICoT format 'a_0 a_1 ... * b_0 b_1 ...||chain #### p_0 p_1 ...'")
        a, b, product = (_lsb_digits(group) for group in match.groups())
    else:
        match = _PLAIN.fullmatch(line)
        if match is None:
            raise ValueError("expected 'a*b' (or 'a*b = product') or the ICoT format")
        a, b = int(match.group(1)), int(match.group(2))
        product = int(match.group(3)) if match.group(3) is not None else a * b
    for operand in (a, b):
        if len(str(operand)) > _MAX_OPERAND_DIGITS:
            raise ValueError(f"operand {operand} has more than {_MAX_OPERAND_DIGITS} digits")
    if product != a * b:
        raise ValueError(f"the line says {a} * {b} = {product}, but it is {a * b}")
    return a, b


def read_problems(path: str | Path) -> Problems:
    """Every problem of `path`; ProblemFileError naming the file and the first bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemFileError(f"{path}: no such problem file") from None
    except UnicodeDecodeError:
        raise ProblemFileError(f"{path}: not a UTF-8 text file of problems") from None
    except OSError as error:
        raise ProblemFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            pair = parse_line(line)
        except ValueError as error:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise ProblemFileError(f"{path}:{number}: {error}: {shown!r}") from None
        if pair is not None:
            pairs.append(pair)
    if not pairs:
        raise ProblemFileError(f"{path}: holds no problems")
    a, b = (torch.tensor(values, dtype=torch.int64) for values in zip(*pairs))
    return Problems(path, a, b)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: recorded with a run so that a later change of an excluded or
    graded file is seen."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
