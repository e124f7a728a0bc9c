"""`evaluate`'s latent figures on a stub model whose probe readings are set by hand: the overall
rate and each latent's, named after the step it holds."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from latentrun.task.multiplication import Batch
from latentrun.train.metrics import evaluate

# 2-digit operands under the running_sums chain: latent 1 holds s1 = a × (b mod 10), latent 2 the product
PROBLEMS = [(12, 34), (56, 78), (90, 11), (23, 45)]
WIDTH = 4  # digits the probe reads per latent


def digits(value: int) -> list[int]:
    return [int(d) for d in str(value).zfill(WIDTH)[::-1]]  # least significant first


class ProbedStub(nn.Module):
    """Answers every problem right; its probe reads what `readings` says, (B, 2 latents, WIDTH) digits."""

    chain = "running_sums"

    def __init__(self, readings: torch.Tensor) -> None:
        super().__init__()
        self.probe = nn.Identity()
        self.readings = readings

    def forward(self, prompt, answer, heads=False):
        probe_logits = nn.functional.one_hot(self.readings, 10).float()  # (B, 2, WIDTH, 10)
        return torch.zeros(answer.shape[0], answer.shape[1], 12), probe_logits, None

    def generate(self, prompt):
        return torch.zeros(prompt.shape[0], 4, dtype=torch.int64)


def test_each_latents_rate_is_counted_and_named_after_its_step():
    readings = torch.tensor([[digits(a * (b % 10)), digits(a * b)] for a, b in PROBLEMS])  # all right
    readings[0, 0, 1] = (readings[0, 0, 1] + 1) % 10  # s1 of 12×34 misread in one digit
    readings[1, 1, 3] = (readings[1, 1, 3] + 1) % 10  # the product of 56×78 and of 90×11 misread
    readings[2, 1, 0] = (readings[2, 1, 0] + 1) % 10
    a, b = (torch.tensor(column) for column in zip(*PROBLEMS))
    split = Batch(a, b, torch.zeros(4, 5, dtype=torch.int64), torch.zeros(4, 4, dtype=torch.int64))
    loss = lambda logits, answer: SimpleNamespace(loss=torch.tensor(0.0))  # noqa: E731

    metrics = evaluate(ProbedStub(readings), split, loss, 4, torch.device("cpu"), operand_width=2)

    assert metrics["val/exact_match"] == 1.0
    assert metrics["val/latent_accuracy"] == 5 / 8  # 3 of 4 s1 right, 2 of 4 products right
    assert metrics["val/latent_accuracy/01_s1"] == 3 / 4
    assert metrics["val/latent_accuracy/02_product"] == 2 / 4
    assert [key for key in metrics if key.startswith("val/latent_accuracy/")] == [
        "val/latent_accuracy/01_s1",
        "val/latent_accuracy/02_product",
    ]
