"""The training objective: scheduled sampling and step supervision around the loss."""

import pytest
import torch
from support import SMOKE

from latentrun import config
from latentrun.config.build import build_components
from latentrun.task.supervision import running_sum_targets, step_targets
from latentrun.train.objective import own_predictions, scheduled_answer, step_loss


def parts(*overrides: str):
    return build_components(config.load(SMOKE, overrides), torch.device("cpu"))


def test_ratio_one_is_plain_teacher_forcing_and_draws_no_coins():
    p = parts("model.dropout=0.0")
    batch = p.task.train_batch(1, 16)
    rng = torch.get_rng_state()
    output = step_loss(p.model, p.loss_fn, batch, teacher_forcing=1.0, operand_width=p.task.operand_width)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(output.loss, p.loss_fn(p.model(batch.prompt, batch.answer), batch.answer).loss)


def test_own_predictions_are_greedy_in_eval_mode_and_draw_nothing():
    p = parts("model.dropout=0.3")
    batch = p.task.train_batch(1, 16)
    p.model.train()
    rng = torch.get_rng_state()
    own = own_predictions(p.model, batch.prompt)
    assert torch.equal(torch.get_rng_state(), rng), "dropout would draw from the saved stream"
    assert p.model.training
    assert torch.equal(own, p.model.eval().generate(batch.prompt))


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.8])
def test_scheduled_answer_mixes_true_and_own_digits_by_seeded_coins(ratio):
    p = parts()
    batch = p.task.train_batch(1, 512)
    own = own_predictions(p.model, batch.prompt)
    torch.manual_seed(7)
    fed = scheduled_answer(p.model, batch, ratio)
    torch.manual_seed(7)
    assert torch.equal(scheduled_answer(p.model, batch, ratio), fed), "coins come from the global generator"
    torch.manual_seed(7)
    keep = torch.rand(batch.answer.shape) < ratio
    assert torch.equal(fed, torch.where(keep, batch.answer, own))
    differs = own != batch.answer
    assert abs(keep[differs].float().mean().item() - ratio) < 0.05


def test_scheduled_sampling_feeds_the_mixed_answer_but_grades_against_the_truth():
    p = parts("model.dropout=0.0")
    batch = p.task.train_batch(1, 64)
    torch.manual_seed(3)
    output = step_loss(p.model, p.loss_fn, batch, teacher_forcing=0.0, operand_width=p.task.operand_width)
    own = own_predictions(p.model, batch.prompt)
    assert not torch.equal(own, batch.answer)
    assert torch.equal(output.loss, p.loss_fn(p.model(batch.prompt, own), batch.answer).loss)


@pytest.mark.parametrize("mode", ["pause", "recurrent"])
def test_step_supervision_adds_the_running_sum_term(mode):
    p = parts(
        f"model.latent_mode={mode}", "model.num_latent=3", "loss.latent_supervision_weight=0.5", "model.dropout=0.0"
    )
    batch = p.task.train_batch(1, 32)
    output = step_loss(p.model, p.loss_fn, batch, teacher_forcing=1.0, operand_width=p.task.operand_width)
    logits, probe_logits, _ = p.model(batch.prompt, batch.answer, heads=True)
    targets = running_sum_targets(batch.a, batch.b, 2, 4)  # operand_width 2 of the 3 latents, 4 digits
    expected = p.loss_fn(logits, batch.answer, probe_logits[:, :2], targets)
    assert torch.equal(output.loss, expected.loss)
    assert output.parts["latent_loss"] > 0
    output.loss.backward()
    assert p.model.probe.weight.grad.abs().sum() > 0


FORCED = ("model.latent_mode=recurrent", "model.num_latent=3", "loss.latent_supervision_weight=1")


def test_latent_forcing_feeds_the_true_running_sums_and_draws_coins_only_between_0_and_1():
    p = parts(*FORCED, "train.latent_forcing.start_step=10", "train.latent_forcing.end_step=20")
    batch = p.task.train_batch(1, 16)
    width = p.task.operand_width
    digits = running_sum_targets(batch.a, batch.b, width, batch.answer.size(1))
    for ratio, model_kwargs in ((0.0, {}), (1.0, {"forced_latents": digits})):
        rng = torch.get_rng_state()
        output = step_loss(p.model, p.loss_fn, batch, teacher_forcing=1.0, operand_width=width, latent_forcing=ratio)
        assert torch.equal(torch.get_rng_state(), rng), ratio
        logits, probe, _ = p.model(batch.prompt, batch.answer, heads=True, **model_kwargs)
        expected = p.loss_fn(logits, batch.answer, probe[:, :width], running_sum_targets(batch.a, batch.b, width, 4))
        assert torch.equal(output.loss, expected.loss), ratio
    torch.manual_seed(5)
    half = step_loss(p.model, p.loss_fn, batch, teacher_forcing=1.0, operand_width=width, latent_forcing=0.5).loss
    torch.manual_seed(5)
    mask = torch.rand(16, width) < 0.5
    logits, probe, _ = p.model(batch.prompt, batch.answer, heads=True, forced_latents=digits, forced_mask=mask)
    expected = p.loss_fn(logits, batch.answer, probe[:, :width], running_sum_targets(batch.a, batch.b, width, 4))
    assert torch.equal(half, expected.loss)


def test_latent_forcing_is_off_by_default_and_builds_no_teacher_embedding():
    p = parts(*FORCED)
    assert p.model.latent_teacher is None
    assert parts(*FORCED, "train.latent_forcing.min_ratio=0.5").model.latent_teacher is not None


# By hand for a pair (a, b) of 2-digit operands: a × b_0, a × b_1 × 10, then (ICoT's chain) a × b.
ICOT_STEPS = {
    "partial_products": lambda a, b: [a * (b % 10), a * (b // 10 % 10) * 10, a * b],
    "partial_products_only": lambda a, b: [a * (b % 10), a * (b // 10 % 10) * 10],
    "partial_products_twice": lambda a, b: [a * (b % 10), a * (b // 10 % 10) * 10, a * b, a * b],
}


@pytest.mark.parametrize("chain", sorted(ICOT_STEPS))
def test_latents_on_icot_steps_are_supervised_and_forced_with_those_steps(chain):
    p = parts(*FORCED, "model.num_latent=4", f"model.chain={chain}", "train.latent_forcing.min_ratio=0.5")
    assert p.model.chain == chain
    batch = p.task.train_batch(1, 16)
    width = p.task.operand_width  # 2
    steps = step_targets(batch.a, batch.b, width, 4, chain)  # (B, S, 4)
    numbers = ICOT_STEPS[chain](int(batch.a[0]), int(batch.b[0]))
    assert steps[0].tolist() == [[int(c) for c in str(n).zfill(4)[::-1]] for n in numbers]
    S = len(numbers)
    kwargs = {"teacher_forcing": 1.0, "operand_width": width, "latent_chain": chain}
    output = step_loss(p.model, p.loss_fn, batch, **kwargs)
    logits, probe, _ = p.model(batch.prompt, batch.answer, heads=True)
    assert torch.equal(output.loss, p.loss_fn(logits, batch.answer, probe[:, :S], steps).loss)
    forced = step_loss(p.model, p.loss_fn, batch, latent_forcing=1.0, **kwargs)
    logits, probe, _ = p.model(batch.prompt, batch.answer, heads=True, forced_latents=steps)
    assert torch.equal(forced.loss, p.loss_fn(logits, batch.answer, probe[:, :S], steps).loss)
    running = step_loss(p.model, p.loss_fn, batch, teacher_forcing=1.0, operand_width=width)
    assert not torch.equal(running.loss, output.loss)  # the default chain asks for other numbers
