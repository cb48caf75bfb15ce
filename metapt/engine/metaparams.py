"""Meta-parameterisations: modules whose parameters are φ and which the PT loss uses.

The interface is deliberately small: a module with parameters (φ), a ``summary``
of scalars for per-step logging, and a ``trajectory_vector`` that is stored every
N steps (the full φ trajectory). A learned augmentation network is just another
subclass; it lives with its domain.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MetaParameterisation(nn.Module):
    """Base class for φ. Subclasses define how the PT loss uses their parameters."""

    trajectory_quantity = "phi"  # what ``trajectory_vector`` holds: the name the trajectory record gives it
    trajectory_columns: tuple[str, ...] = ()  # names of its entries, when they are not one per task

    def summary(self) -> dict[str, float]:
        """A few scalars that describe φ now (logged every step)."""
        flat = self.trajectory_vector()
        return {"phi_norm": float(flat.norm()), "phi_mean": float(flat.mean()), "phi_std": float(flat.std(unbiased=False))}

    def trajectory_vector(self) -> torch.Tensor:
        """A detached 1-D CPU view of φ, stored every N steps for the trajectory artifact."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()]).cpu()

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups for φ; override to split the meta lr (e.g. an aug net and its global scale)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def make_optimizer(self, lr: float, eps: float) -> torch.optim.Optimizer:
        """The meta optimiser (Adam, the paper's); a parameterisation with a constraint brings its own (the simplex: EG)."""
        return torch.optim.Adam(self.param_groups(lr), eps=eps)


def _weight_summary(weights: torch.Tensor, logits: torch.Tensor, top_k: int) -> dict[str, float]:
    w = weights.detach().double()
    p = w / w.sum()
    entropy = float(-(p * p.clamp_min(1e-300).log()).sum() / math.log(len(w))) if len(w) > 1 else 1.0
    k = min(top_k, len(w))
    return {
        "w_mean": float(w.mean()),
        "w_std": float(w.std(unbiased=False)),
        "w_min": float(w.min()),
        "w_max": float(w.max()),
        "w_norm_entropy": entropy,
        f"w_top{k}_mass": float(torch.topk(p, k).values.sum()),
        "logit_saturated_frac": float((logits.detach().abs() > 4).double().mean()),
    }


def weighted_task_mean(per_task_loss: torch.Tensor, w: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of w_t·ℓ over [..., T] losses; masked entries (missing labels) excluded when a mask is given."""
    weighted = per_task_loss * w.to(per_task_loss.dtype)
    if mask is None:
        return weighted.mean()
    mask = mask.to(per_task_loss.dtype)
    return (weighted * mask).sum() / mask.sum().clamp_min(1)


class TaskWeights(MetaParameterisation):
    """One logit per PT task; weight w_t = 2·sigmoid(λ_t), so λ = 0 gives w = 1 (the paper's choice).

    ``forward`` takes per-task losses of shape [..., T] (e.g. [batch, tasks]) and returns
    their weighted mean, masked entries excluded when a mask is given (missing labels).
    """

    def __init__(self, n_tasks: int, top_k: int = 10):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_tasks))
        self.top_k = top_k

    def weights(self) -> torch.Tensor:
        return 2 * torch.sigmoid(self.logits)

    def forward(self, per_task_loss: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return weighted_task_mean(per_task_loss, self.weights(), mask)

    def summary(self) -> dict[str, float]:
        return _weight_summary(self.weights(), self.logits, self.top_k)

    trajectory_quantity = "weights"  # w = 2·sigmoid(λ), already squashed

    def trajectory_vector(self) -> torch.Tensor:
        return self.weights().detach().cpu()


class ExponentiatedGradient(torch.optim.Optimizer):
    """Normalised exponentiated gradient on the probability simplex (mirror descent with the entropy).

    p ← p · exp(−lr · g / max|g|), then p ← p / Σp. Dividing by max|g| makes every step move the
    largest log-ratio by exactly ``lr``, whatever the scale of the hypergradient (the analogue of
    Adam's scale-freeness); the update is multiplicative, so p stays strictly positive and sums to 1.
    Stateless: its checkpoint is the parameters themselves.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                scale = p.grad.abs().max()
                if scale > 0:
                    p.mul_(torch.exp(-group["lr"] * p.grad / scale))
                    p.div_(p.sum())
        return None


class SimplexTaskWeights(MetaParameterisation):
    """Task weights on the scaled simplex, w = T·p with p ≥ 0, Σp = 1, learned by exponentiated gradient.

    The total weight stays T (the uniform baseline's), so meta-learning can only move weight between
    tasks, not inflate the PT loss; p is the leaf, so the hypergradient is ∂L/∂p and EG on it is exact
    mirror descent (the softmax parameterisation with Adam is not: its steps are not scale-free and
    collapse onto a few tasks at large lr, docs/ppi_results.md).
    """

    def __init__(self, n_tasks: int, top_k: int = 10):
        super().__init__()
        self.probs = nn.Parameter(torch.full((n_tasks,), 1.0 / n_tasks))
        self.top_k = top_k

    def weights(self) -> torch.Tensor:
        return len(self.probs) * self.probs

    def forward(self, per_task_loss: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return weighted_task_mean(per_task_loss, self.weights(), mask)

    def summary(self) -> dict[str, float]:
        return _weight_summary(self.weights(), self.weights().detach().log(), self.top_k)  # log w: 0 at uniform

    def make_optimizer(self, lr: float, eps: float) -> torch.optim.Optimizer:
        return ExponentiatedGradient(self.param_groups(lr)[0]["params"], lr)

    trajectory_quantity = "weights"

    def trajectory_vector(self) -> torch.Tensor:
        return self.weights().detach().cpu()


class ExampleWeights(MetaParameterisation):
    """One logit per PT example (data reweighting); weight 2·sigmoid(λ_i), indexed by example id."""

    def __init__(self, n_examples: int, top_k: int = 10):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_examples))
        self.top_k = top_k

    def weights(self, index: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.logits if index is None else self.logits[index]
        return 2 * torch.sigmoid(logits)

    def forward(self, per_example_loss: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Weighted mean of per-example losses [B] (or [B, ...], averaged over trailing dims)."""
        loss = per_example_loss.reshape(len(index), -1).mean(dim=1)
        return (loss * self.weights(index).to(loss.dtype)).mean()

    def summary(self) -> dict[str, float]:
        return _weight_summary(self.weights(), self.logits, self.top_k)

    trajectory_quantity = "weights"  # w = 2·sigmoid(λ), already squashed

    def trajectory_vector(self) -> torch.Tensor:
        return self.weights().detach().cpu()


class FixedTaskWeights(MetaParameterisation):
    """Constant task weights with no meta-parameters: uniform PT, or the oracle's helpful-only mask."""

    def __init__(self, weights: torch.Tensor, top_k: int = 10):
        super().__init__()
        self.register_buffer("fixed", torch.as_tensor(weights, dtype=torch.float32).clone())
        self.top_k = top_k

    def weights(self) -> torch.Tensor:
        return self.fixed

    def forward(self, per_task_loss: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return weighted_task_mean(per_task_loss, self.weights(), mask)

    def summary(self) -> dict[str, float]:
        return _weight_summary(self.fixed, torch.zeros_like(self.fixed), self.top_k)

    trajectory_quantity = "weights"

    def trajectory_vector(self) -> torch.Tensor:
        return self.fixed.detach().cpu()


class SampledTasks(FixedTaskWeights):
    """Task selection per episode (Luo et al. 2021): each PT step trains on a random subset of tasks.

    Task t is drawn with probability p_t = w_t / 2 from learned weights w ∈ (0, 2); the mask is
    rescaled by 1/mean(p) so the loss keeps its scale. Uses the global torch RNG (checkpointed).
    """

    def __init__(self, learned_weights: torch.Tensor, top_k: int = 10):
        super().__init__((torch.as_tensor(learned_weights, dtype=torch.float32) / 2).clamp(0, 1), top_k)

    def weights(self) -> torch.Tensor:
        return torch.bernoulli(self.fixed) / self.fixed.mean().clamp_min(1e-12)
