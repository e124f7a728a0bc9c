"""Config rules of the multiplication task that span several keys. Torch-free: validating a config
imports this, not the task."""

from __future__ import annotations

from latentrun.core.rules import CrossProblem, Sections


def cross_problems(sections: Sections) -> list[CrossProblem]:
    """Operand digit ranges are ordered, and the token widths hold the largest operands and product."""
    dataset = sections.get("dataset")
    if dataset is None or dataset["name"] != "multiplication":
        return []
    found = []
    lo, hi, ow, pw = dataset["min_digits"], dataset["max_digits"], dataset["operand_width"], dataset["product_width"]
    if lo > hi:
        found.append(
            CrossProblem(
                [("dataset", "min_digits"), ("dataset", "max_digits")],
                f"min_digits ({lo}) must be <= max_digits ({hi})",
            )
        )
    if ow is not None and ow < hi:
        found.append(
            CrossProblem(
                [("dataset", "operand_width"), ("dataset", "max_digits")],
                f"operand_width ({ow}) must be >= max_digits ({hi})",
            )
        )
    what, width = ("operand_width", ow) if ow is not None else ("max_digits", hi)
    if pw is not None and pw < 2 * width:
        found.append(
            CrossProblem(
                [("dataset", "product_width"), ("dataset", what)],
                f"product_width ({pw}) must be >= 2 * {what} ({2 * width})",
            )
        )
    return found
