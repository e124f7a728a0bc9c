"""Training FLOPs of a run's model, counted by torch rather than estimated by formula.

torch's FlopCounterMode counts every matmul the model really executes, so the count follows the
architecture (latent slots, whatever a model adds) without a hand-kept formula. Its registry lacks
the fused CPU attention kernel, so that one is added with torch's own attention formulas.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import flop_counter

_EXAMPLES = 2  # FLOPs are linear in the batch; two examples keep every batched shape general


def _cpu_attention(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return flop_counter.sdpa_flop_count(query, key, value)


def _cpu_attention_backward(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any
) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


def _extra_formulas() -> dict[Any, Any]:
    aten = torch.ops.aten
    found = {}
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_attention),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_attention_backward),
    ):
        if hasattr(aten, name):
            found[getattr(aten, name)] = formula
    return found


def training_flops_per_example(model: torch.nn.Module, prompt: torch.Tensor, answer: torch.Tensor) -> float:
    """FLOPs of one teacher-forced forward and backward pass per example, from a small batch.

    Counts the model only: the loss, a latent probe head, scheduled sampling's no-grad pass, the
    optimizer update and evaluation are left out, as in the usual 6·N·tokens estimate this replaces. The gradients it leaves
    on the parameters are cleared again.
    """
    prompt, answer = prompt[:_EXAMPLES], answer[:_EXAMPLES]
    was_training = model.training
    model.train()
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_extra_formulas())
    try:
        with counter:
            model(prompt, answer).float().sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return counter.get_total_flops() / prompt.size(0)
