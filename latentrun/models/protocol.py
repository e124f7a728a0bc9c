"""`TaskModel`: what training, evaluation and inference ask of a model, whichever kind it is.

Every model reads a prompt `a*b=` (B, Tp) and the true answer (B, P), and returns the logits that
predict each answer digit (B, P, V); it writes answers greedily; it counts its parameters. What
only one kind does (a chain model's layout, a latent model's heads) stays on that kind's class, and
code that needs it asks for that class. Typing `Components.model` with this protocol, rather than
`nn.Module`, lets mypy check those calls: nn.Module's `__getattr__` hides a model's own methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from latentrun.models.chain import ChainTransformer
from latentrun.models.latent import LatentTransformer

# The registered models, as a run's config builds them: nn.Modules that are TaskModels.
AnyModel = LatentTransformer | ChainTransformer


class TaskModel(Protocol):
    """A model of the multiplication task, as an `nn.Module` is seen from the trainer."""

    training: bool
    TRAINING_AIDS: ClassVar[tuple[str, ...]]  # submodules that only training uses (never generation)
    chain: str  # the steps a chain model writes, or supervised latents hold (task/chains.py, task/supervision.py)

    def __call__(self, prompt: Tensor, answer: Tensor, /, *args: Any, **kwargs: Any) -> Any:
        """`forward`: teacher-forced logits (B, P, V); keywords of one model kind ask for more."""
        ...

    def generate(self, prompt: Tensor, use_cache: bool = True) -> Tensor:
        """The greedy answer (B, P)."""
        ...

    def generate_with_logits(self, prompt: Tensor, use_cache: bool = True) -> tuple[Tensor, Tensor]:
        """The greedy answer (B, P) and the logits each digit was chosen from (B, P, V)."""
        ...

    def num_parameters(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any: ...
