"""Probes: the targets against hand-worked long multiplication, the closed-form fit against states
built to hold (or not hold) a target, and the hooks against the model's own logits."""

import pytest
import torch
from support import EXPERIMENTS

from latentrun import cli, config
from latentrun.config.build import build_model, build_task
from latentrun.report.probe_fit import fit_probes, ridge_predict, split_problems
from latentrun.report.probe_states import POSITION_CLASSES, collect_states, positions
from latentrun.report.probe_targets import CLASSIFICATION, TARGETS, build_targets, column_sums
from latentrun.task.chains import build_chain


def test_column_sums_and_carries_of_hand_worked_products():
    # 12 x 34: columns 2*4 = 8, 2*3 + 1*4 = 10, 1*3 = 3 (+1 carried) = 4, 0  ->  408
    # 99 x 99: 81, 162 + 8 = 170, 81 + 17 = 98, 0 + 9 = 9                  ->  9801
    sums, carries = column_sums(torch.tensor([12, 99]), torch.tensor([34, 99]), width=2)
    assert sums.tolist() == [[8, 10, 4, 0], [81, 170, 98, 9]]
    assert carries.tolist() == [[0, 0, 1, 0], [0, 8, 17, 9]]


def test_targets_of_12_times_34():
    built = {t.name: t for t in build_targets(torch.tensor([12]), torch.tensor([34]), 2, TARGETS)}
    assert list(built) == list(TARGETS)
    # running sums 12 x 4 = 48 and 12 x 34 = 408, four digits each, least significant first
    assert built["running_sum"].values.tolist() == [[8, 4, 0, 0, 8, 0, 4, 0]]
    assert built["running_sum"].components[:2] == ("k1d0", "k1d1")
    # partial products 12 x 4 = 48 and 12 x 3 = 36, three digits each
    assert built["partial_product"].values.tolist() == [[8, 4, 0, 6, 3, 0]]
    assert built["column_sum"].values.tolist() == [[8.0, 10.0, 4.0, 0.0]]
    assert built["carry"].values.tolist() == [[0, 1, 0]] and built["carry"].components == ("k1", "k2", "k3")
    subset = build_targets(torch.tensor([12]), torch.tensor([34]), 2, ("carry", "running_sum"))
    assert [t.name for t in subset] == ["running_sum", "carry"]


def test_ridge_recovers_an_exact_linear_map():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=generator, dtype=torch.float64)
    weights = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    y = x @ weights + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    predicted = ridge_predict(x[:200], x[200:], y[:200], torch.tensor([0, 1, 1]), 2)
    assert torch.allclose(predicted, y[200:], atol=1e-3)


def test_a_state_that_holds_nothing_predicts_the_training_mean():
    x = torch.ones(50, 4, dtype=torch.float64)
    y = torch.arange(50, dtype=torch.float64)[:, None]
    predicted = ridge_predict(x[:40], x[40:], y[:40], torch.tensor([0]), 1)
    assert torch.allclose(predicted, torch.full((10, 1), 19.5, dtype=torch.float64))


def synthetic_states(count: int = 2000, seed: int = 0):
    """States (N, 1, 2, D) of random 2-digit products: position 0 holds every target linearly (a
    random linear image of their one-hot codes and ĉ values, plus a little noise); position 1 is noise."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randint(0, 100, (count,), generator=generator), torch.randint(0, 100, (count,), generator=generator)
    targets = build_targets(a, b, 2, TARGETS)
    codes = []
    for target in targets:
        if target.metric == CLASSIFICATION:
            codes.append(torch.nn.functional.one_hot(target.values, int(target.values.max()) + 1).flatten(1).double())
        else:
            codes.append(target.values / target.values.std(0))
    code = torch.cat(codes, dim=1)  # (N, K)
    dims = code.shape[1] + 16
    mixing = torch.randn(code.shape[1], dims, generator=generator, dtype=torch.float64)
    held = code @ mixing + 0.01 * torch.randn(count, dims, generator=generator, dtype=torch.float64)
    noise = torch.randn(count, dims, generator=generator, dtype=torch.float64)
    return torch.stack([held, noise], dim=1)[:, None].float(), targets


@pytest.fixture(scope="module")
def synthetic():
    states, targets = synthetic_states()
    return states, targets, fit_probes(states, targets, seed=0)


def test_a_state_that_encodes_the_targets_linearly_reads_them(synthetic):
    _, _, results = synthetic
    for result in results:
        assert result.scores[0, 0].min() >= 0.99, (result.target.name, result.scores[0, 0])


def test_noise_reads_chance(synthetic):
    _, _, results = synthetic
    for result in results:
        noise = result.scores[0, 1]  # (C,)
        if result.target.metric == CLASSIFICATION:
            # 400 held-out problems: one standard error of an accuracy is at most 0.025
            assert (noise - result.chance).abs().max() <= 0.08, result.target.name
            assert (noise - result.chance).mean().abs() <= 0.02, result.target.name
        else:
            assert noise.max() <= 0.05, result.target.name


def test_probes_are_deterministic_for_a_seed(synthetic):
    states, targets, results = synthetic
    again = fit_probes(states, targets, seed=0)
    assert all(torch.equal(r.scores, s.scores) and torch.equal(r.chance, s.chance) for r, s in zip(results, again))
    assert not torch.equal(split_problems(2000, 0)[1], split_problems(2000, 1)[1])
    other = fit_probes(states, targets, seed=1)
    assert any(not torch.equal(r.scores, s.scores) for r, s in zip(results, other))


def test_the_held_out_problems_are_never_trained_on():
    train, held_out = split_problems(2000, 3)
    assert len(held_out) == 400 and len(train) == 1600
    assert sorted(torch.cat([train, held_out]).tolist()) == list(range(2000))


def test_the_cli_names_the_targets_and_position_classes_the_probe_knows():
    assert cli.PROBE_TARGETS == TARGETS and cli.PROBE_POSITIONS == POSITION_CLASSES


# ---- hidden states through hooks ------------------------------------------------------------------

MODELS = {
    "simple": ("smoke_simple.yaml", [], None),
    "pause": ("smoke.yaml", [], None),
    "recurrent": ("smoke.yaml", ["model.latent_mode=recurrent"], None),
    "cot": ("smoke_chain.yaml", [], None),
    "coconut": ("smoke_chain.yaml", ["curriculum.name=coconut"], (1, 4)),
    "internalized": ("smoke_chain.yaml", [], (0, 9)),
    "icot": ("smoke_chain.yaml", ["model.chain=partial_products"], None),
}
LABELS = {
    "simple": "a0 a1 * b0 b1 = y0 y1 y2",
    "pause": "a0 a1 * b0 b1 = L1 L2 y0 y1 y2",
    "recurrent": "a0 a1 * b0 b1 = L1 L2 y0 y1 y2",
    # chain of 3-digit operands: step 1 (4 digits) and step 2 (5 digits); the answer has 6
    "cot": "a0 a1 a2 * b0 b1 b2 = s1d0 s1d1 s1d2 s1d3 s2d0 s2d1 s2d2 s2d3 s2d4 y0 y1 y2 y3 y4",
    "coconut": "a0 a1 a2 * b0 b1 b2 = T1 s2d0 s2d1 s2d2 s2d3 s2d4 y0 y1 y2 y3 y4",
    "internalized": "a0 a1 a2 * b0 b1 b2 = y0 y1 y2 y3 y4",
    # ICoT's chain: p0 = a × b0 (4 digits), p1 = a × b1 × 10 (5), s2 = p0 + p1 (5), p2 = a × b2 × 100 (6)
    "icot": "a0 a1 a2 * b0 b1 b2 = p0d0 p0d1 p0d2 p0d3 p1d0 p1d1 p1d2 p1d3 p1d4 s2d0 s2d1 s2d2 s2d3 s2d4 "
    "p2d0 p2d1 p2d2 p2d3 p2d4 p2d5 y0 y1 y2 y3 y4",
}


def built(kind: str):
    file, overrides, layout = MODELS[kind]
    resolved = config.load(EXPERIMENTS / file, [f"{override}" for override in overrides])
    task = build_task(resolved)
    torch.manual_seed(0)
    model = build_model(resolved, task).eval()
    if layout is not None:
        model.set_layout(*layout)
    return task, model


@pytest.mark.parametrize("kind", list(MODELS))
def test_positions_are_labelled_by_what_is_read_there(kind):
    task, model = built(kind)
    layout = positions(model, task)
    assert " ".join(p.label for p in layout) == LABELS[kind]
    assert [p.index for p in layout] == list(range(len(layout)))
    kinds = {p.label[0]: p.kind for p in layout}
    assert kinds["a"] == kinds["*"] == kinds["="] == "prompt" and kinds["y"] == "answer"
    assert kinds.get("L", "latent") == kinds.get("T", "latent") == "latent"
    assert kinds.get("s", "chain") == kinds.get("p", "chain") == "chain"


@pytest.mark.parametrize("kind", list(MODELS))
def test_hooked_states_give_back_the_models_own_logits(kind):
    """The last block's states through the final LayerNorm and the tied head are the logits the
    model computes itself: the pieces of a multi-call pass are joined in the right order."""
    task, model = built(kind)
    pairs = task.split("val").slice(0, 7)
    states = collect_states(model, task, pairs, [0, 1, 2], batch_size=4)  # (7, 3, T, D)
    assert states.shape[:3] == (7, 3, len(LABELS[kind].split()))
    with torch.no_grad():
        if hasattr(model, "chain_len"):
            answer_logits = model(pairs.prompt, pairs.answer, build_chain(task, model.chain).tokens(pairs.a, pairs.b))[
                0
            ]
        else:
            answer_logits = model(pairs.prompt, pairs.answer)
        answer_len = task.answer_len
        from_hooks = model.backbone.logits(model.backbone.ln_f(states[:, 2, -answer_len:]))
        embedded = model.backbone.embed(pairs.prompt[:, :1]) + model.backbone.wpe.weight[0]
    assert torch.allclose(from_hooks, answer_logits, atol=1e-5)
    assert torch.allclose(states[:, 0, :1], embedded, atol=1e-6)  # layer 0: token plus position embedding
