"""Place-value (Abacus) position embeddings: the place ids, the random shift in training only, and
`learned` staying exactly what it was."""

from __future__ import annotations

import pytest
import torch

from latentrun.models.layers import abacus_places
from latentrun.task.multiplication import MultiplicationTask

PLACES = ([1, 2, 0, 1, 2, 0], [1, 2, 3, 4])  # "ab*cd=" least significant first, 4 product digits


def task(lsb_first: bool) -> MultiplicationTask:
    return MultiplicationTask(1, 2, None, None, lsb_first, True, "value", 0.1, 10, 10, (), seed=0)


def test_digit_places_follow_the_written_order():
    assert task(True).digit_places() == PLACES
    assert task(False).digit_places() == ([2, 1, 0, 2, 1, 0], [4, 3, 2, 1])


def test_latent_slots_and_separators_have_no_place():
    assert abacus_places("abacus", PLACES, num_latent=2) == [1, 2, 0, 1, 2, 0, 0, 0, 1, 2, 3, 4]
    assert abacus_places("learned", PLACES, num_latent=2) is None
    with pytest.raises(ValueError, match="position"):
        abacus_places("rotary", PLACES)
    with pytest.raises(ValueError, match="digit_places"):
        abacus_places("abacus", None)


@pytest.mark.parametrize("kind", ["simple", "latent", "recurrent"])
def test_learned_is_unchanged_and_abacus_only_adds_its_table(build, random_batch, kind):
    learned = build(kind, seed=2)
    explicit = build(kind, seed=2, position="learned", digit_places=PLACES)
    abacus = build(kind, seed=2, position="abacus", abacus_max_offset=5, digit_places=PLACES)
    prompt, answer = random_batch(3)
    assert torch.equal(learned(prompt, answer), explicit(prompt, answer))
    for name, value in learned.backbone.state_dict().items():
        assert torch.equal(value, abacus.backbone.state_dict()[name]), name  # the table is built last
    assert set(abacus.state_dict()) - set(learned.state_dict()) == {"backbone.wae.weight"}
    assert abacus.backbone.wae.weight.shape == (4 + 5 + 1, 16)  # ids 0..max place + max offset
    assert abacus(prompt, answer).shape == (3, 4, 13)
    abacus.load_state_dict({**learned.state_dict(), "backbone.wae.weight": torch.zeros(10, 16)})
    assert torch.equal(abacus.eval()(prompt, answer), learned.eval()(prompt, answer))


@pytest.mark.parametrize("kind", ["simple", "recurrent"])
def test_the_shift_is_drawn_once_per_training_pass_and_never_in_evaluation(build, random_batch, kind):
    model = build(kind, seed=2, position="abacus", abacus_max_offset=7, digit_places=PLACES).double()
    prompt, answer = random_batch(3)
    model.eval()
    rng = torch.get_rng_state()
    evaluated = model(prompt, answer)
    model.generate(prompt)
    assert torch.equal(torch.get_rng_state(), rng), "evaluation must not draw"
    model.train()
    shifts, outputs = set(), []
    for seed in range(12):
        torch.manual_seed(seed)
        expected = int(torch.randint(0, 8, ()))
        torch.manual_seed(seed)
        outputs.append(model(prompt, answer))
        assert int(model.backbone.place_offset) == expected
        shifts.add(expected)
        if expected == 0:
            torch.testing.assert_close(outputs[-1], evaluated, rtol=0, atol=0)
    assert len(shifts) > 3
    assert not all(torch.equal(outputs[0], other) for other in outputs[1:])


def test_every_shifted_id_stays_in_the_table(build, random_batch):
    model = build("recurrent", position="abacus", abacus_max_offset=3, digit_places=PLACES)
    prompt, answer = random_batch(2)
    torch.manual_seed(0)
    for _ in range(20):  # an id past the table would raise an index error
        model(prompt, answer)
    assert int(model.backbone.places.max()) + 3 == model.backbone.wae.num_embeddings - 1
