"""Hidden states of a trained model at every layer and position, read through forward hooks.

The models are not changed for this: a pre-hook on the first block keeps what enters it (the
embeddings, positions included: layer 0) and a hook on block i keeps its output (layer i). A
model that runs its sequence in several backbone calls (recurrent latents, continuous thoughts,
one position at a time through the KV cache) hands the hooks consecutive pieces in order, so
joining them along the sequence gives the same (B, T, D) a single pass would.

The pass is teacher-forced: the true written chain and the true product digits are read, so a
state is a function of the problem alone, as in the model's training. The state at position t is
the one the model predicts token t + 1 from.

Position classes: `prompt` (a's digits, `*`, b's digits, `=`), `latent` (latent positions, or
continuous thoughts), `chain` (written chain tokens), `answer` (product digits read as input, the
last one never is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from latentrun.models.chain import ChainTransformer
from latentrun.models.protocol import AnyModel
from latentrun.task.chains import build_chain
from latentrun.task.multiplication import Batch, MultiplicationTask

POSITION_CLASSES = ("prompt", "latent", "chain", "answer")


@dataclass(frozen=True)
class Position:
    """One sequence position: its index, its class and a short label (`a0` is a's units digit)."""

    index: int
    kind: str
    label: str


def model_kind(model: AnyModel) -> str:
    """'chain' for a model that writes a chain, 'latent' for the latent transformer (and the simple one)."""
    return "chain" if isinstance(model, ChainTransformer) else "latent"


def positions(model: AnyModel, task: MultiplicationTask) -> list[Position]:
    """Every position of the teacher-forced sequence the model reads, in order."""
    width = task.operand_width
    places = [place - 1 for place in task.number_places(width)]
    labels = [("prompt", f"a{p}") for p in places] + [("prompt", "*")]
    labels += [("prompt", f"b{p}") for p in places] + [("prompt", "=")]
    if isinstance(model, ChainTransformer):
        labels += [("latent", f"T{t + 1}") for t in range(model.thoughts)]
        written = [("chain", label) for label in build_chain(task, model.chain).labels()]
        labels += written[len(written) - model.written_len :]
    else:
        labels += [("latent", f"L{k + 1}") for k in range(model.num_latent)]
    answer_places = [place - 1 for place in task.number_places(task.answer_len)]
    labels += [("answer", f"y{p}") for p in answer_places[:-1]]
    return [Position(index, kind, label) for index, (kind, label) in enumerate(labels)]


def backbone_blocks(model: AnyModel) -> nn.ModuleList:
    """The transformer blocks of the model's backbone, in order."""
    return model.backbone.blocks


@torch.no_grad()
def collect_states(
    model: AnyModel, task: MultiplicationTask, pairs: Batch, layers: Sequence[int], batch_size: int = 500
) -> Tensor:
    """Hidden states (N, len(layers), T, D) of the model in eval mode on `pairs`; layer 0 is the
    embeddings, layer i the output of block i."""
    blocks = backbone_blocks(model)
    pieces: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    handles = []
    if 0 in pieces:
        handles.append(blocks[0].register_forward_pre_hook(lambda module, args: pieces[0].append(args[0])))
    for number, block in enumerate(blocks, start=1):
        if number in pieces:
            handles.append(block.register_forward_hook(_keeper(pieces[number])))
    length = len(positions(model, task))
    chain = build_chain(task, model.chain) if isinstance(model, ChainTransformer) else None
    device = next(model.parameters()).device
    collected = []
    try:
        model.eval()
        for start in range(0, len(pairs), batch_size):
            batch = pairs.slice(start, start + batch_size).to(device)
            if chain is not None:  # teacher-forced: the true chain, not the one the model would write
                model(batch.prompt, batch.answer, chain.tokens(batch.a, batch.b))
            else:
                model(batch.prompt, batch.answer)
            states = [torch.cat(pieces[layer], dim=1).float().cpu() for layer in layers]  # each (B, T, D)
            for layer in layers:
                pieces[layer].clear()
            if states[0].shape[1] != length:
                raise RuntimeError(f"hooks saw {states[0].shape[1]} positions, the layout has {length}")
            collected.append(torch.stack(states, dim=1))  # (B, Ly, T, D)
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(collected)


def _keeper(store: list[Tensor]) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
    def keep(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        store.append(output)

    return keep
