"""What one training step minimises: scheduled sampling, the forward pass, the loss and, when the
loss asks for it, step supervision of the latents.

Kept apart from the step loop so that the loop stays about updates, logging and checkpoints, and
so that everything that decides *what* is computed from a batch reads top to bottom in one place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from latentrun.models.latent import Readings
from latentrun.models.protocol import TaskModel
from latentrun.task.chains import Chain
from latentrun.task.multiplication import Batch
from latentrun.task.supervision import column_sums, step_targets, supervised_readings
from latentrun.train.losses import LossOutput, ProductLoss

__all__ = ["LossOutput", "chain_loss", "forced_latents", "scheduled_answer", "step_loss"]


def own_predictions(model: TaskModel, prompt: Tensor) -> Tensor:
    """The answer (B, P) the model writes itself: greedy decoding in eval mode, without gradients.

    Eval mode means no dropout, so this pass draws nothing from any random stream, and it sees
    what the model would feed itself at test time. The model's train/eval mode is restored after.
    """
    was_training = model.training
    model.eval()
    try:
        return model.generate(prompt)
    finally:
        model.train(was_training)


def scheduled_answer(model: TaskModel, batch: Batch, ratio: float) -> Tensor:
    """Answer digits to feed (B, P): the true digit with probability `ratio`, else the model's own.

    The coins come from the global torch CPU generator, which every checkpoint saves and restores,
    so a resumed run draws the same coins as one that never stopped; they are drawn on the CPU so
    that every device gets the same ones.
    """
    keep_true = torch.rand(batch.answer.shape) < ratio  # (B, P)
    return torch.where(keep_true.to(batch.answer.device), batch.answer, own_predictions(model, batch.prompt))


def forced_latents(batch: Batch, ratio: float, operand_width: int, chain: str = "running_sums") -> dict[str, Tensor]:
    """Model arguments that teacher-force the latents with probability `ratio`: the digits of the
    steps `chain` asks them to hold (B, S, P), the running sums a × (b mod 10^k), k = 1..operand_width
    by default, and which (example, latent) to force (B, S), drawn like scheduled sampling's coins
    from the checkpointed global CPU generator. No arguments at ratio 0 and no coins at ratio 1
    (every latent forced: the parallel pass)."""
    if ratio <= 0.0:
        return {}
    digits = step_targets(batch.a, batch.b, operand_width, batch.answer.size(1), chain)  # (B, S, P)
    if ratio >= 1.0:
        return {"forced_latents": digits}
    mask = torch.rand(digits.shape[:2]) < ratio  # (B, S)
    return {"forced_latents": digits, "forced_mask": mask.to(digits.device)}


def chain_loss(
    model: TaskModel,
    loss_fn: ProductLoss,
    batch: Batch,
    answer_in: Tensor,
    chain: Chain,
    extra_removed: Tensor | None = None,
) -> LossOutput:
    """The loss of a chain model: the product's loss plus the mean cross-entropy of the written chain
    tokens (teacher-forced), as a language model would weigh every token it writes; logged as `chain_loss`.
    With `extra_removed` (B,) (removal smoothing) example i writes that many tokens fewer, and the
    mean runs over the tokens each example writes."""
    tokens = chain.tokens(batch.a.cpu(), batch.b.cpu()).to(batch.prompt.device)  # (B, C)
    extra = {} if extra_removed is None else {"extra_removed": extra_removed.to(batch.prompt.device)}
    answer_logits, chain_logits = model(batch.prompt, answer_in, chain=tokens, **extra)  # (B, P, V), (B, Cw, V)
    output = loss_fn(answer_logits, batch.answer)
    Cw = chain_logits.size(1)
    if Cw == 0:  # everything internalized or thought: the product alone
        return output
    written = tokens[:, tokens.size(1) - Cw :]  # the suffix the stage's layout writes (B, Cw)
    if extra_removed is not None:
        # Example i writes its suffix from token `extra_i` of that one on, left-aligned; the rest is padding.
        index = extra["extra_removed"][:, None] + torch.arange(Cw, device=written.device)  # (B, Cw)
        written = torch.where(index < Cw, written.gather(1, index.clamp(max=Cw - 1)), -100)
        if bool((written == -100).all()):
            return output
    written_loss = F.cross_entropy(chain_logits.flatten(0, 1).float(), written.flatten(), ignore_index=-100)
    return LossOutput(output.loss + written_loss, {**output.parts, "chain_loss": written_loss.detach()})


def step_loss(
    model: TaskModel,
    loss_fn: ProductLoss,
    batch: Batch,
    *,
    teacher_forcing: float,
    operand_width: int,
    latent_forcing: float = 0.0,
    latent_chain: str = "running_sums",
    chain: Chain | None = None,
    extra_removed: Tensor | None = None,
) -> LossOutput:
    """The loss of one training batch, with gradients.

    `teacher_forcing` is the probability of feeding a true product digit (1 skips scheduled
    sampling entirely). With `loss_fn.latent_supervision_weight` > 0 the model's probe reads the
    first min(num_latent, operand_width) latents and the loss adds their running-sum term;
    `latent_forcing` is then the probability of feeding a latent its predecessor's true running
    sum instead of the predecessor's state (0: free-running latents, as evaluation runs them);
    `latent_chain` names the steps the latents hold (task/supervision.py), running sums by default.
    With `loss_fn.column_sum_weight` > 0 the model's column head reads ĉ_k at each answer position
    (Bai et al.'s auxiliary loss; the task writes the product least significant digit first).
    A chain model gets `chain`, which writes its targets (the written steps are always teacher-forced),
    and under removal smoothing `extra_removed`, the tokens each example removes beyond its stage.
    """
    answer_in = batch.answer if teacher_forcing >= 1.0 else scheduled_answer(model, batch, teacher_forcing)
    if chain is not None:
        return chain_loss(model, loss_fn, batch, answer_in, chain, extra_removed)
    supervised = loss_fn.latent_supervision_weight > 0
    columns = loss_fn.column_sum_weight > 0
    if not supervised and not columns:
        return loss_fn(model(batch.prompt, answer_in), batch.answer)
    forcing = forced_latents(batch, latent_forcing, operand_width, latent_chain) if supervised else {}
    readings: Readings = model(batch.prompt, answer_in, heads=True, **forcing)
    latent_terms: tuple[Tensor, ...] = ()
    if supervised:
        if readings.latents is None:
            raise ValueError(
                "step supervision needs a model built with latent_probe (loss.latent_supervision_weight > 0)"
            )
        latent_terms = supervised_readings(
            readings.latents, batch.a, batch.b, operand_width, latent_chain
        )  # (B, K, P, 10), (B, K, P)
    if not columns:
        return loss_fn(readings.logits, batch.answer, *latent_terms)
    if readings.columns is None:
        raise ValueError("the column-sum loss needs a model built with column_head (loss.column_sum_weight > 0)")
    targets = column_sums(batch.a, batch.b, operand_width, batch.answer.size(1))  # (B, P), least significant first
    return loss_fn(readings.logits, batch.answer, *latent_terms, columns=readings.columns, column_target=targets)
