"""The signal a one-step method can find: how each PT task's gradient aligns with the FT objective's.

For PT task t, ``a_t = ⟨∇θ ℓ̄_t, v⟩`` with ℓ̄_t the task's mean PT loss over the PT set and v = ∇θ L_val
the FT validation loss's gradient. A PT step on task t moves θ by −η∇ℓ̄_t and L_val by −η·a_t, so a_t > 0
says "up-weighting t helps now". Every one-step hypergradient (K = 1, P = 0) is a stochastic estimate of
−a; computed here full-batch and noise-free, the ranking of the tasks by ``a`` is the best such a method can
do, hence a *ceiling*: on synthetic data its AUC against the planted helpful tasks says whether the signal
exists at this label budget (docs/ppi_signal.md).

Three pieces, each checked in float64 (tests/unit/test_alignment.py):

* :func:`task_alignments`: all T alignments with one double backward per batch. With u ∈ R^T,
  Jᵀu = ∇θ Σ_t u_t ℓ_t is built with ``create_graph``, and ∂⟨Jᵀu, v⟩/∂u = J v holds every a_t at once,
  for any number of vectors v, at the cost of one extra backward each (not T).
* :func:`fit_l2_logistic`: the converged FT head, an L2-regularised logistic regression per FT task,
  by batched Newton in float64 (the tasks' head blocks are independent: T small (d+1)² solves).
* :func:`val_grad_through_head`: dL_val(θ, ψ*(θ))/dθ through that head by the implicit function theorem,
  = ∂θ L_val − ∂θ⟨∂ψ L_tr(θ, ψ*), q⟩ with q_t = H_t⁻¹ ∂ψ_t L_val: the "probe" objective, where the head
  is re-fitted to every θ rather than held fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

Params = Sequence[Tensor]


def task_alignments(per_task_loss: Callable[[object], Tensor], params: Params, batches: Iterable, vectors: dict[str, Params]) -> dict[str, Tensor]:
    """``{name: a [T]}``, a_t = ⟨∇θ ℓ̄_t, v⟩ for each v in ``vectors``, over all ``batches`` (float64 sums).

    ``per_task_loss(batch)`` returns ``(summed loss per task [T], examples in the batch)``; ℓ̄_t is the
    sum over all batches ÷ all examples, so the result does not depend on how the set is batched.
    """
    acc: dict[str, Tensor] = {}
    n = 0
    for batch in batches:
        losses, count = per_task_loss(batch)
        u = torch.zeros_like(losses, requires_grad=True)
        jt_u = torch.autograd.grad(losses, params, grad_outputs=u, create_graph=True)
        names = list(vectors)
        for i, name in enumerate(names):
            dot = sum((a * v).sum() for a, v in zip(jt_u, vectors[name]))
            (jv,) = torch.autograd.grad(dot, u, retain_graph=i < len(names) - 1)
            acc[name] = acc.get(name, torch.zeros(len(jv), dtype=torch.float64, device=jv.device)) + jv.double()
        n += int(count)
    return {k: v / n for k, v in acc.items()}


def _augment(x: Tensor) -> Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], 1)


@dataclass
class LogisticHeads:
    """Per FT task t: weights ``W[t]`` over [features, 1] and the Hessian ``H[t]`` of its objective at W."""

    W: Tensor  # [T, d + 1], float64
    H: Tensor  # [T, d + 1, d + 1]
    lam: float
    iterations: int


def _l2(d1: int, lam: float, like: Tensor) -> Tensor:
    reg = torch.full((d1,), float(lam), dtype=torch.float64, device=like.device)
    reg[-1] = 0.0  # the bias is not regularised
    return reg


def _gradient_hessian(xb: Tensor, y: Tensor, W: Tensor, reg: Tensor) -> tuple[Tensor, Tensor]:
    n = len(xb)
    p = torch.sigmoid(xb @ W.T)
    grad = ((p - y).T @ xb) / n + reg * W
    weighted = xb.T.unsqueeze(0) * (p * (1 - p)).T.unsqueeze(1)  # [T, d+1, n]: x̃ᵀ diag(s_t), one bmm for all tasks
    hess = torch.bmm(weighted, xb.expand(len(W), *xb.shape)) / n + torch.diag_embed(reg.expand_as(W))
    return grad, hess


def _objective(xb: Tensor, y: Tensor, W: Tensor, reg: Tensor) -> Tensor:
    """Per task: mean_i BCE + ½ Σ_j reg_j W_tj²  [T]."""
    bce = F.binary_cross_entropy_with_logits(xb @ W.T, y, reduction="none").mean(0)
    return bce + 0.5 * (reg * W * W).sum(1)


def fit_l2_logistic(x: Tensor, y: Tensor, lam: float, W0: Tensor | None = None, tol: float = 1e-10, max_iter: int = 100) -> LogisticHeads:
    """argmin_W Σ_t [mean_i BCE(x̃_i·W_t, y_it) + lam/2 ‖W_t[:-1]‖²], x̃ = [x, 1]: Newton in float64, all tasks at once.

    Strictly convex for lam > 0. Each task's Newton step is halved until its objective does not rise
    (a full step can overshoot on nearly separable tasks), so it converges from zero or from a warm start
    ``W0``. It stops when the largest gradient entry is below ``tol``: not on the step, which stays large
    along the unregularised bias of a separable task while the objective no longer moves. Raises if that
    has not happened in ``max_iter``.
    """
    if lam <= 0:
        raise ValueError(f"lam must be > 0 (the Hessian of the unregularised head can be singular), got {lam}")
    xb, y = _augment(x.detach().double()), y.detach().double()
    reg = _l2(xb.shape[1], lam, xb)
    W = torch.zeros(y.shape[1], xb.shape[1], dtype=torch.float64, device=xb.device) if W0 is None else W0.detach().double().clone()
    f = _objective(xb, y, W, reg)
    steps = 0
    while True:
        grad, hess = _gradient_hessian(xb, y, W, reg)
        if float(grad.abs().max()) < tol:
            break
        if steps == max_iter:
            raise RuntimeError(f"Newton did not converge in {max_iter} iterations (largest gradient entry {float(grad.abs().max()):.2e})")
        step = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        scale = torch.ones(len(W), 1, dtype=W.dtype, device=W.device)
        for _ in range(30):  # backtracking, per task
            f_new = _objective(xb, y, W - scale * step, reg)
            worse = f_new > f + 1e-15 * f.abs()
            if not bool(worse.any()):
                break
            scale[worse] *= 0.5
        W, f = W - scale * step, f_new
        steps += 1
    return LogisticHeads(W, hess, float(lam), steps)


def mean_bce(x: Tensor, W: Tensor, y: Tensor) -> Tensor:
    """The FT loss of the head: BCE averaged over examples and tasks."""
    return F.binary_cross_entropy_with_logits(_augment(x.double()) @ W.T, y.double())


def choose_lambda(x_tr: Tensor, y_tr: Tensor, x_val: Tensor, y_val: Tensor, grid: Sequence[float] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0),
                  tol: float = 1e-10) -> tuple[float, float]:
    """The L2 strength with the lowest MetaFT-val loss (never the test set), and that loss."""
    losses = [(lam, float(mean_bce(x_val, fit_l2_logistic(x_tr, y_tr, lam, tol=tol).W, y_val))) for lam in grid]
    return min(losses, key=lambda t: t[1])


def val_grad_through_head(x_tr: Tensor, y_tr: Tensor, x_val: Tensor, y_val: Tensor, heads: LogisticHeads, params: Params) -> tuple[list[Tensor], list[Tensor]]:
    """(total, fixed-head) dL_val(θ, ψ*(θ))/dθ, ψ* the L2 logistic heads fitted on (x_tr, y_tr) (``heads``).

    Implicit function theorem: ψ* solves ∂ψ L_tr = 0, so dψ*/dθ = −H⁻¹ ∂²L_tr/∂ψ∂θ and the total gradient
    is ∂θ L_val − ∂θ ⟨∂ψ L_tr(θ, ψ*), q⟩ with q_t = H_t⁻¹ ∂ψ_t L_val (one batched solve, one extra backward).
    ``x_tr`` and ``x_val`` carry θ's graph; the gradients come back in the dtype of ``params``.
    """
    W, H = heads.W, heads.H
    lval = mean_bce(x_val, W, y_val)
    with torch.no_grad():
        xv = _augment(x_val.double())
        g_psi = ((torch.sigmoid(xv @ W.T) - y_val.double()).T @ xv) / (len(xv) * W.shape[0])  # ∂ψ_t L_val
        q = torch.linalg.solve(H, g_psi.unsqueeze(-1)).squeeze(-1)
    xt = _augment(x_tr.double())
    inner = ((torch.sigmoid(xt @ W.T) - y_tr.double()) * (xt @ q.T)).sum() / len(xt)  # ⟨∂ψ L_tr, q⟩ (its θ-part)
    fixed = torch.autograd.grad(lval, params, retain_graph=True)
    corr = torch.autograd.grad(inner, params)
    total = [(a - b).to(p.dtype) for a, b, p in zip(fixed, corr, params)]
    return total, [a.to(p.dtype) for a, p in zip(fixed, params)]


def rank_stability(scores: Sequence[np.ndarray]) -> float:
    """Mean pairwise Spearman correlation between score vectors (e.g. from bootstrap resamples of MetaFT)."""
    from scipy.stats import spearmanr

    if len(scores) < 2:
        raise ValueError("rank_stability needs at least two score vectors")
    pairs = [(i, j) for i in range(len(scores)) for j in range(i + 1, len(scores))]
    return float(np.mean([spearmanr(scores[i], scores[j]).statistic for i, j in pairs]))
