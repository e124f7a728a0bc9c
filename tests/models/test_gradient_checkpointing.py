"""Gradient checkpointing recomputes activations in backward and must change nothing else."""

import pytest
import torch

from latentrun.models.layers import Block, set_gradient_checkpointing


def train_pass(model, prompt, answer):
    """One dropout-active forward and backward; returns (loss, grads, RNG state after)."""
    model.train()
    torch.manual_seed(123)
    logits = model(prompt, answer)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), answer.flatten())
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}, torch.get_rng_state()


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16"])
def test_checkpointed_blocks_give_bitwise_equal_loss_gradients_and_rng(make, random_batch, autocast):
    prompt, answer = random_batch(8)
    plain, checkpointed = make(dropout=0.2), make(dropout=0.2)
    set_gradient_checkpointing(checkpointed, True)
    assert all(block.checkpoint_activations for block in checkpointed.modules() if isinstance(block, Block))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        expected = train_pass(plain, prompt, answer)
        got = train_pass(checkpointed, prompt, answer)
    assert torch.equal(expected[0], got[0])
    for name, grad in expected[1].items():
        assert torch.equal(grad, got[1][name]), name
    assert torch.equal(expected[2], got[2]), "dropout's RNG stream ends where it would without checkpointing"
    assert checkpointed.state_dict().keys() == plain.state_dict().keys()


def test_checkpointing_really_recomputes_in_backward(make, random_batch, monkeypatch):
    """Guard against the flag silently doing nothing: every block's MLP half (the part checkpointed
    even when attention writes a gradient-carrying cache, as recurrent latents do) runs again in backward."""
    prompt, answer = random_batch(4)
    model = make()
    calls = []
    body = Block._mlp_half

    def counted(self, *args, **kwargs):
        calls.append(self)
        return body(self, *args, **kwargs)

    monkeypatch.setattr(Block, "_mlp_half", counted)
    set_gradient_checkpointing(model, True)
    logits = model(prompt, answer)
    forward_calls = len(calls)
    assert forward_calls >= 2
    logits.sum().backward()
    assert len(calls) == 2 * forward_calls, "each block call ran once more in backward"
    set_gradient_checkpointing(model, False)
    calls.clear()
    model(prompt, answer).sum().backward()
    assert len(calls) == forward_calls
