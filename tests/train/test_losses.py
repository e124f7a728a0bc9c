import math

import torch
import torch.nn.functional as F

from latentrun.train.losses import CombinedLoss, CrossEntropyLoss


def test_cross_entropy_matches_torch():
    logits, target = torch.randn(4, 6, 13), torch.randint(0, 10, (4, 6))
    out = CrossEntropyLoss(latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target)
    assert torch.allclose(out.loss, F.cross_entropy(logits.reshape(-1, 13), target.reshape(-1)))


def test_combined_adds_weighted_expected_exact_match_gap():
    logits, target = torch.randn(4, 6, 13, dtype=torch.float64), torch.randint(0, 10, (4, 6))
    out = CombinedLoss(accuracy_weight=0.5, latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target)
    probs = logits.softmax(-1).gather(-1, target[..., None]).squeeze(-1)
    expected_em = probs.prod(dim=1).mean()
    ce = F.cross_entropy(logits.reshape(-1, 13).float(), target.reshape(-1))
    assert math.isclose(float(out.loss), float(ce + 0.5 * (1 - expected_em)), rel_tol=1e-5)
    assert math.isclose(float(out.parts["expected_exact_match"]), float(expected_em), rel_tol=1e-5)


def test_combined_is_cross_entropy_when_weight_is_zero_and_differentiable():
    logits = torch.randn(3, 4, 13, requires_grad=True)
    target = torch.randint(0, 10, (3, 4))
    assert torch.allclose(
        CombinedLoss(0.0, latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target).loss,
        CrossEntropyLoss(latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target).loss,
    )
    CombinedLoss(2.0, latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target).loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_perfect_predictions_have_near_zero_combined_loss():
    target = torch.randint(0, 10, (5, 4))
    logits = F.one_hot(target, 13).float() * 50
    assert float(CombinedLoss(1.0, latent_supervision_weight=0.0, column_sum_weight=0.0)(logits, target).loss) < 1e-6


def test_latent_term_is_added_with_its_weight_and_logged():
    logits, target = torch.randn(4, 6, 13), torch.randint(0, 10, (4, 6))
    latent_logits, latent_target = torch.randn(4, 2, 6, 10), torch.randint(0, 10, (4, 2, 6))
    latent = F.cross_entropy(latent_logits.reshape(-1, 10), latent_target.reshape(-1))
    for loss_fn, plain in (
        (
            CrossEntropyLoss(latent_supervision_weight=0.3, column_sum_weight=0.0),
            CrossEntropyLoss(latent_supervision_weight=0.0, column_sum_weight=0.0),
        ),
        (
            CombinedLoss(0.5, latent_supervision_weight=0.3, column_sum_weight=0.0),
            CombinedLoss(0.5, latent_supervision_weight=0.0, column_sum_weight=0.0),
        ),
    ):
        out = loss_fn(logits, target, latent_logits, latent_target)
        base = plain(logits, target).loss
        assert math.isclose(float(out.loss), float(base + 0.3 * latent), rel_tol=1e-6)
        assert math.isclose(float(out.parts["latent_loss"]), float(latent), rel_tol=1e-6)
        assert torch.equal(loss_fn(logits, target).loss, base)  # without latents, just the answer loss
        assert torch.equal(plain(logits, target, latent_logits, latent_target).loss, base)  # weight 0 ignores them
