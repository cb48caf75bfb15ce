"""Functional SGD and Adam over lists of tensors, differentiable when the gradients carry a graph.

One implementation serves both the online FT-head step (plain tensors) and the
K-step differentiable unroll of a hyper-step, so the Adam state carries over between
them exactly as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Tensors = list[torch.Tensor]


@dataclass
class OptState:
    """Adam moments and step count (SGD keeps only the count)."""

    step: int = 0
    exp_avg: Tensors = field(default_factory=list)
    exp_avg_sq: Tensors = field(default_factory=list)

    def detached(self) -> "OptState":
        return OptState(self.step, [t.detach() for t in self.exp_avg], [t.detach() for t in self.exp_avg_sq])

    def state_dict(self) -> dict:
        return {"step": self.step, "exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq)}

    @classmethod
    def from_state_dict(cls, d: dict) -> "OptState":
        return cls(int(d["step"]), list(d["exp_avg"]), list(d["exp_avg_sq"]))


class FunctionalOptimizer:
    """``update(params, grads, state) -> (params, state)`` with no in-place ops."""

    def __init__(self, kind: str, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if kind not in ("adam", "sgd"):
            raise ValueError(f"optimizer kind {kind!r} not in ['adam', 'sgd']")
        self.kind, self.lr, self.betas, self.eps, self.weight_decay = kind, lr, betas, eps, weight_decay

    def init_state(self, params: Tensors) -> OptState:
        if self.kind == "sgd":
            return OptState()
        return OptState(0, [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])

    def update(self, params: Tensors, grads: Tensors, state: OptState) -> tuple[Tensors, OptState]:
        if self.weight_decay:
            grads = [g + self.weight_decay * p for g, p in zip(grads, params)]
        step = state.step + 1
        if self.kind == "sgd":
            return [p - self.lr * g for p, g in zip(params, grads)], OptState(step)
        b1, b2 = self.betas
        m = [b1 * m0 + (1 - b1) * g for m0, g in zip(state.exp_avg, grads)]
        v = [b2 * v0 + (1 - b2) * g * g for v0, g in zip(state.exp_avg_sq, grads)]
        c1, c2 = 1 - b1**step, 1 - b2**step
        # clamp before sqrt: d sqrt(v)/dv is infinite at v = 0, which would put NaNs in the double backward
        new = [p - self.lr * (mi / c1) / ((vi / c2).clamp_min(1e-30).sqrt() + self.eps) for p, mi, vi in zip(params, m, v)]
        return new, OptState(step, m, v)
