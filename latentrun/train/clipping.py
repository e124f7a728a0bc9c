"""Gradient clipping with a fixed threshold or one that follows recent gradient norms (AutoClip).

AutoClip (Seetharaman et al., 2020) clips each step to a percentile of the gradient norms seen so
far, so the threshold adapts as norms shrink during training instead of being a guess made before
it. Here the history is a window of the last `window` finite norms, the threshold never exceeds
`max_norm`, and the history is part of the checkpoint: without it a resumed run would clip
differently from one that never stopped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

CLIP_MODES: tuple[str, ...] = ("fixed", "autoclip")


class GradClipper:
    """Clips gradients in place and remembers what it needs to choose the next threshold."""

    def __init__(self, mode: str, max_norm: float, percentile: float, window: int) -> None:
        if mode not in CLIP_MODES:
            raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {mode!r}")
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.mode = mode
        self.max_norm = max_norm
        self.percentile = percentile
        self.history: deque[float] = deque(maxlen=window)

    def clip(self, parameters: Iterable[torch.nn.Parameter]) -> tuple[torch.Tensor, float]:
        """Clip the gradients of `parameters`; returns (norm before clipping, threshold used)."""
        if self.mode == "fixed":
            # One fused call and no host sync: the fixed path costs what plain clipping costs.
            return torch.nn.utils.clip_grad_norm_(parameters, self.max_norm), self.max_norm
        parameters = [p for p in parameters if p.grad is not None]
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)
        value = float(norm)
        if math.isfinite(value):
            self.history.append(value)
        threshold = self.threshold()
        torch.nn.utils.clip_grads_with_norm_(parameters, threshold, norm)
        return norm, threshold

    def threshold(self) -> float:
        """The percentile of the remembered norms (the current one included), capped by max_norm."""
        if self.mode == "fixed" or not self.history:
            return self.max_norm
        return min(self.max_norm, float(np.percentile(np.fromiter(self.history, dtype=np.float64), self.percentile)))

    def state_dict(self) -> dict[str, Any]:
        """The norm history as a list of floats: loadable with weights_only, exact on reload."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history.clear()
        self.history.extend(float(value) for value in state["history"])
