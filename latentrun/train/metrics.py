"""Held-out evaluation: teacher-forced loss, greedy exact match and digit accuracy, and how well the
probe reads the latents' running sums when the model is step-supervised."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from latentrun.models.protocol import TaskModel
from latentrun.task.multiplication import Batch
from latentrun.task.supervision import latent_hits, step_names, supervised_readings


@torch.no_grad()
def evaluate(
    model: TaskModel,
    split: Batch,
    loss_fn: Callable,
    batch_size: int,
    device: torch.device,
    operand_width: int,
    prefix: str = "val",
) -> dict[str, float]:
    """Metrics of `model` on a split, in eval mode; restores the model's train/eval mode after.

    Tags are `{prefix}/...`: `val` while training picks the best checkpoint, `test` for the figure
    of record. {prefix}/loss is the loss on the product alone, so that it compares across models; a
    model with a probe also gets {prefix}/latent_accuracy, the fraction of supervised latents whose
    step (running sum, or the model's `chain`) the probe reads entirely right, and the same for each
    latent as {prefix}/latent_accuracy/NN_STEP (`val/latent_accuracy/05_s3`: latent 5, which holds
    s3), so that a reader sees which step the misses are in. Latents always run free (no teacher
    forcing).
    """
    was_training = model.training
    model.eval()
    probed = getattr(model, "probe", None) is not None
    loss_total, exact, digits_right, digits_total = 0.0, 0, 0, 0
    hits_per_latent: Tensor | None = None  # (K,) problems whose latent k the probe reads right
    try:
        for start in range(0, len(split), batch_size):
            batch = split.slice(start, start + batch_size).to(device)
            if probed:
                logits, probe_logits, _ = model(batch.prompt, batch.answer, heads=True)  # (B, P, V), (B, L, P, 10)
                readings = supervised_readings(probe_logits, batch.a, batch.b, operand_width, model.chain)
                hits = latent_hits(*readings).sum(dim=0).cpu()  # (K,)
                hits_per_latent = hits if hits_per_latent is None else hits_per_latent + hits
            else:
                logits = model(batch.prompt, batch.answer)  # (B, P, V)
            loss_total += float(loss_fn(logits, batch.answer).loss) * len(batch)
            correct = model.generate(batch.prompt) == batch.answer  # (B, P)
            exact += int(correct.all(dim=1).sum())
            digits_right += int(correct.sum())
            digits_total += correct.numel()
    finally:
        model.train(was_training)
    metrics = {
        f"{prefix}/loss": loss_total / len(split),
        f"{prefix}/exact_match": exact / len(split),
        f"{prefix}/digit_accuracy": digits_right / digits_total,
    }
    if hits_per_latent is not None:
        metrics[f"{prefix}/latent_accuracy"] = int(hits_per_latent.sum()) / (len(split) * len(hits_per_latent))
        rates = [int(hits) / len(split) for hits in hits_per_latent]
        names = step_names(operand_width, model.chain)
        metrics.update({f"{prefix}/latent_accuracy/{k + 1:02d}_{names[k]}": rate for k, rate in enumerate(rates)})
    return metrics
