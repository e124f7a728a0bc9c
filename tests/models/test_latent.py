"""What only the latent model has: the latent slots, and num_latent = 0 being the former simple model."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from latentrun.models.config import ModelConfig
from latentrun.models.layers import Backbone, greedy_decode


class FormerSimpleTransformer(nn.Module):
    """The SimpleTransformer class that `simple_transformer` replaced, as it was (layout and init):
    the reference that its registration with no latents must equal, and the writer of old checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt_len, self.answer_len = 6, 4
        config = ModelConfig(13, 6, 4, 16, 2, 2, 2, 0.0, position="learned", abacus_max_offset=0)
        self.backbone = Backbone(config, max_len=6 + 4)

    def forward(self, prompt: Tensor, answer: Tensor) -> Tensor:
        x = self.backbone.embed(torch.cat([prompt, answer[:, :-1]], dim=1))  # (B, Tp+P-1, D)
        return self.backbone.logits(self.backbone(x)[:, self.prompt_len - 1 :])  # (B, P, V)

    @torch.no_grad()
    def generate(self, prompt: Tensor) -> Tensor:
        return greedy_decode(self.backbone, self.backbone.embed(prompt), self.answer_len, use_cache=True)[0]


def former_simple(seed: int) -> FormerSimpleTransformer:
    torch.manual_seed(seed)
    return FormerSimpleTransformer()


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "kind,overrides", [("simple", {}), ("latent", {"num_latent": 0}), ("recurrent", {"num_latent": 0})]
)
@pytest.mark.parametrize("batch", [1, 4])
def test_zero_latents_is_the_former_simple_model(build, scramble, random_batch, kind, overrides, batch):
    """No latents in either mode is the plain transformer: its parameters alone, initialised as the
    former class did for the same seed, and the same logits and answers."""
    model, reference = build(kind, seed=3, **overrides), former_simple(seed=3)
    assert same_state(model, reference)
    scramble(model, 5), scramble(reference, 5)
    prompt, answer = random_batch(batch)
    assert torch.equal(model(prompt, answer), reference(prompt, answer))
    assert torch.equal(model.generate(prompt), reference.generate(prompt))


def test_a_checkpoint_of_the_former_simple_class_loads_and_predicts_the_same(build, scramble, random_batch, tmp_path):
    former = scramble(former_simple(seed=0), 1).eval()
    torch.save({"model": former.state_dict()}, tmp_path / "step.pt")
    model = build("simple", seed=9).eval()
    model.load_state_dict(torch.load(tmp_path / "step.pt", weights_only=True)["model"])  # strict
    prompt, answer = random_batch(16)
    assert len(former.generate(prompt).unique(dim=0)) > 1, "degenerate test: every prompt got the same answer"
    assert torch.equal(model(prompt, answer), former(prompt, answer))
    assert torch.equal(model.generate(prompt), former.generate(prompt))


def test_a_zero_latent_pause_checkpoint_with_its_empty_latents_still_loads(build, random_batch):
    """Pause-mode models with 0 latents used to own an empty (0, D) `latents` parameter."""
    state = {**build("simple", seed=2).state_dict(), "latents": torch.empty(0, 16)}
    prompt, answer = random_batch(3)
    for kind, overrides in (("latent", {"num_latent": 0}), ("simple", {})):
        model = build(kind, seed=4, **overrides)
        model.load_state_dict(state)  # strict: the empty tensor is dropped, nothing else is
        assert torch.equal(model(prompt, answer), build("simple", seed=2)(prompt, answer))
    with pytest.raises(RuntimeError, match="latents"):  # a real latents tensor is not silently dropped
        build("simple").load_state_dict({**state, "latents": torch.ones(2, 16)})


def test_latents_add_num_latent_times_d_model_parameters(build):
    assert build("latent", num_latent=5).num_parameters() == build("simple").num_parameters() + 5 * (16 + 16)
    # each latent slot brings its vector and one position embedding


def test_negative_num_latent_is_refused(build):
    with pytest.raises(ValueError, match="num_latent"):
        build("latent", num_latent=-1)


def teacher_forced_pass(model: nn.Module, prompt: Tensor, answer: Tensor) -> tuple[Tensor, Tensor]:
    """What the backbone read and what it computed in a real teacher-forced forward pass: input
    embeddings and final hidden states, both (B, Tp+L+P-1, D). A cached recurrent pass runs the
    backbone a chunk at a time, in order, so the chunks are joined."""
    inputs: list[Tensor] = []
    hidden: list[Tensor] = []
    hooks = [
        model.backbone.register_forward_pre_hook(lambda module, args: inputs.append(args[0])),
        model.backbone.ln_f.register_forward_hook(lambda module, args, out: hidden.append(out)),
    ]
    try:
        model(prompt, answer)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(inputs, dim=1), torch.cat(hidden, dim=1)


def teacher_forced_hidden_states(model: nn.Module, prompt: Tensor, answer: Tensor) -> Tensor:
    return teacher_forced_pass(model, prompt, answer)[1]


def rerun_prefix(model: nn.Module, prompt: Tensor) -> Tensor:
    """Input embeddings of the prompt then the recurrent latents (B, Tp+L, D), by the definition:
    re-run the growing sequence and append latent_proj of its last final hidden state."""
    prefix = model.backbone.embed(prompt)  # (B, Tp, D)
    for _ in range(model.num_latent):
        prefix = torch.cat([prefix, model.latent_proj(model.backbone(prefix)[:, -1:])], dim=1)
    return prefix


@pytest.mark.parametrize("kind", ["latent", "recurrent"])
def test_latent_hidden_states_depend_on_the_prompt_only(build, scramble, random_batch, kind):
    """Causal attention: the latents' final hidden states in a teacher-forced pass are the same
    whatever the answer, and change with the prompt."""
    model = scramble(build(kind, num_latent=3), 0).double().eval()
    prompt, answer = random_batch(2)
    hidden = teacher_forced_hidden_states(model, prompt, answer)
    assert hidden.shape == (2, 6 + 3 + 4 - 1, 16)
    states = hidden[:, 6:9]  # (B, L, D)
    other_answer = (answer + 1) % 10
    torch.testing.assert_close(
        teacher_forced_hidden_states(model, prompt, other_answer)[:, 6:9], states, rtol=0, atol=0
    )
    other = prompt.clone()
    other[:, 0] = (other[:, 0] + 1) % 10
    assert not torch.allclose(teacher_forced_hidden_states(model, other, answer)[:, 6:9], states)


def test_every_answer_logit_reads_the_latents(build, random_batch):
    model = build("latent", num_latent=3).double().eval()
    prompt, answer = random_batch(2)
    before = model(prompt, answer)
    with torch.no_grad():
        model.latents[0] += torch.randn(16, dtype=torch.float64)  # not a constant: LayerNorm would erase it
    diff = (model(prompt, answer) - before).abs().amax(dim=-1)  # (B, P)
    assert (diff > 1e-9).all()


# ---- recurrent latents and the probe ------------------------------------------------------------


def test_unknown_latent_mode_is_refused(build):
    with pytest.raises(ValueError, match="latent_mode"):
        build("latent", latent_mode="pondering")


def test_parameter_counts_of_each_mode_and_the_probe(build):
    simple = build("simple").num_parameters()
    D, L, P = 16, 3, 4
    assert build("latent").num_parameters() == simple + L * D + L * D  # vectors + positions
    assert build("recurrent").num_parameters() == simple + L * D + D * D + D  # positions + projection
    assert build("recurrent", latent_probe=True).num_parameters() == simple + L * D + D * D + D + D * P * 10 + P * 10


def test_each_recurrent_latent_is_the_projected_state_before_it(build, scramble, random_batch):
    """The definition: latent k's input is latent_proj(final hidden state at the position before it)."""
    model = scramble(build("recurrent", seed=1), 1).double().eval()
    prompt, answer = random_batch(3)
    inputs, h = teacher_forced_pass(model, prompt, answer)  # (B, Tp+L+P-1, D) each
    torch.testing.assert_close(inputs[:, :6], model.backbone.embed(prompt), rtol=0, atol=0)
    for k in range(3):
        torch.testing.assert_close(inputs[:, 6 + k], model.latent_proj(h[:, 5 + k]), rtol=0, atol=1e-12)
    torch.testing.assert_close(inputs[:, 9:], model.backbone.embed(answer[:, :-1]), rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_forward_through_the_cache_equals_one_full_pass_with_the_same_gradients(
    build, scramble, random_batch, seed
):
    """Training runs the latents one position at a time through a gradient-carrying cache; that must
    be the same function, with the same gradients, as one causal pass over the re-run prefix."""
    model = scramble(build("recurrent", seed=seed, dropout=0.0), seed).double()
    prompt, answer = random_batch(4, seed=seed)
    logits = model(prompt, answer)  # (B, P, V)
    sequence = torch.cat([rerun_prefix(model, prompt), model.backbone.embed(answer[:, :-1])], dim=1)
    reference = model.backbone.logits(model.backbone(sequence)[:, 6 + 3 - 1 :])
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-12)
    names, params = zip(*model.named_parameters())
    weights = torch.randn(logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad((logits * weights).sum(), params)
    reference_grads = torch.autograd.grad((reference * weights).sum(), params)
    for name, got, want in zip(names, grads, reference_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=name)
    # The reference re-runs the prefix differentiably, so equal gradients mean they flow through the
    # chain of latents; the projection that forms the chain gets one.
    assert grads[names.index("latent_proj.weight")].abs().sum() > 0
    with torch.no_grad():  # the preallocated inference cache gives the same logits
        torch.testing.assert_close(model.eval()(prompt, answer), logits.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode_kind", ["latent", "recurrent"])
def test_probe_reads_every_latent_state(build, scramble, random_batch, mode_kind):
    model = scramble(build(mode_kind, seed=2, latent_probe=True), 2).double().eval()
    prompt, answer = random_batch(5)
    logits, probe_logits, columns = model(prompt, answer, heads=True)
    assert columns is None and probe_logits.shape == (5, 3, 4, 10)
    torch.testing.assert_close(logits, model(prompt, answer), rtol=0, atol=0)
    states = teacher_forced_hidden_states(model, prompt, answer)[:, 6:9]  # (B, L, D): the latents' positions
    expected = model.probe(states).view(5, 3, 4, 10)
    torch.testing.assert_close(probe_logits, expected, rtol=0, atol=1e-12)


def test_a_model_reads_only_the_heads_it_was_built_with(build, random_batch):
    prompt, answer = random_batch(2)
    plain = build("recurrent")(prompt, answer, heads=True)
    assert plain.latents is None and plain.columns is None
    assert build("recurrent", column_head=True)(prompt, answer, heads=True).columns.shape == (2, 4)
