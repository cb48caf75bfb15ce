"""One hyper-step: dL_val/dφ through K unrolled FT steps and the implicit function theorem.

    dL_val/dφ = −gᵀ (H + δI)⁻¹ M,   g = dL_val/dθ (through the unroll),
    H = ∂²L_PT/∂θ²,  M = ∂²L_PT/∂θ∂φ,  (H + δI)⁻¹g ≈ α Σ_{j=0..P} (I − α(H + δI))ʲ g.

Plain ``torch.autograd`` double backward throughout (the measured fastest option, see
docs/background.md, "Hypergradient implementation"). The PT gradient graph is built once; every Hessian-vector
product reuses it without ``create_graph``, so memory is flat in P.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from metapt.engine.alignment import choose_lambda, fit_l2_logistic, mean_bce, val_grad_through_head
from metapt.engine.config import HypergradConfig
from metapt.engine.functional_optim import FunctionalOptimizer, OptState
from metapt.engine.problem import BilevelProblem

Tensors = list[torch.Tensor]


class NeumannDivergenceWarning(RuntimeWarning):
    """The Neumann series is growing: α·λmax ≥ 2 or the Hessian has negative curvature. Damp or shrink α."""


@dataclass
class HypergradResult:
    grads: Tensors  # dL_val/dφ, aligned with problem.phi(), after normalisation
    raw_norm: float  # ‖hypergradient‖ before normalisation
    head_params: Tensors  # ψ after the K unrolled steps (detached): written back by the caller
    head_state: OptState
    val_loss: float
    pt_loss: float
    alpha: float
    neumann_growth: float  # ‖last Neumann term‖ / ‖g‖; > 1 means growing terms
    lambda_max: float | None
    neumann_bound: float | None = None  # neumann_skip_bound at this step (with neumann_skip_tol set)
    hvps_skipped: bool = False  # the bound was within neumann_skip_tol: v = α(P + 1)g, no HVP


@dataclass
class PTGraph:
    """∇θ L_PT built with ``create_graph=True``, ready for HVPs and the mixed VJP."""

    loss: torch.Tensor
    grads: Tensors


# ---- modes and buffers ---------------------------------------------------------------------
@contextmanager
def module_modes(modules: Sequence[nn.Module], train: bool, bn: str = "train", dropout: str = "on") -> Iterator[None]:
    """Set train/eval, then override BN and dropout layers; restore every flag afterwards."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.train(train)
        if train:
            for m in mod.modules():
                if (bn == "eval" and isinstance(m, _BatchNorm)) or (dropout == "off" and isinstance(m, _DropoutNd)):
                    m.eval()
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


@contextmanager
def preserved_buffers(modules: Sequence[nn.Module], enabled: bool) -> Iterator[None]:
    """Snapshot and restore buffers (BN running stats) around a block when ``enabled``."""
    if not enabled:
        yield
        return
    saved = [(m, name, b.detach().clone()) for mod in modules for m in mod.modules() for name, b in m._buffers.items() if b is not None]
    try:
        yield
    finally:
        # Rebind rather than copy_: the graph may have saved the updated buffers, and an
        # in-place restore would bump their version and break the later backward passes.
        for m, name, copy in saved:
            m._buffers[name] = copy


# ---- the pieces ----------------------------------------------------------------------------
def head_step(
    problem: BilevelProblem, head_opt: FunctionalOptimizer, psi: Tensors, state: OptState, feats: torch.Tensor, batch: Any
) -> tuple[Tensors, OptState, torch.Tensor]:
    """One plain (non-differentiable) FT-head step on detached features: the online head's update."""
    psi = [t.detach().requires_grad_(True) for t in psi]
    loss = problem.ft_loss(problem.head_logits(dict(zip(problem.named_head_params(), psi)), feats.detach()), batch)
    grads = torch.autograd.grad(loss, psi)
    with torch.no_grad():
        new, state = head_opt.update(psi, list(grads), state)
    return new, state, loss.detach()


def unrolled_val_grad(
    problem: BilevelProblem,
    head_opt: FunctionalOptimizer,
    head_state: OptState,
    ft_train_batches: Sequence[Any],
    val_batch: Any,
    cfg: HypergradConfig,
    catch_up_steps: int = 0,
) -> tuple[Tensors, Tensors, OptState, float]:
    """g = dL_val/dθ after K differentiable FT steps from the current θ and ψ.

    ``catch_up_steps`` plain head steps come first, on detached features of the first FT batch:
    the online head's skipped steps, taken where the encoder forward is already paid for.
    Returns (g over ``problem.theta()``, unrolled ψ, its optimiser state, L_val).
    """
    theta = problem.theta()
    enc_named = problem.named_encoder_params()
    enc_names, enc_params = list(enc_named), list(enc_named.values())
    head_names = list(problem.named_head_params())
    psi = [p.detach().requires_grad_(True) for p in problem.named_head_params().values()]
    unroll_encoder = cfg.unroll == "encoder"
    enc_opt = FunctionalOptimizer(head_opt.kind, cfg.encoder_ft_lr or head_opt.lr, head_opt.betas, head_opt.eps)
    enc_state = enc_opt.init_state(enc_params)
    state = head_state
    with module_modes([problem.encoder], train=cfg.unroll_encoder_mode == "train"):
        for i, batch in enumerate(ft_train_batches):
            feats = problem.features(batch, dict(zip(enc_names, enc_params)) if unroll_encoder else None)
            if i == 0 and catch_up_steps:
                for _ in range(catch_up_steps):
                    psi, state, _ = head_step(problem, head_opt, psi, state, feats, batch)
                psi = [t.requires_grad_(True) for t in psi]
            loss = problem.ft_loss(problem.head_logits(dict(zip(head_names, psi)), feats), batch)
            if unroll_encoder:
                grads = torch.autograd.grad(loss, enc_params + psi, create_graph=True)
                enc_params, enc_state = enc_opt.update(enc_params, list(grads[: len(enc_params)]), enc_state)
                psi, state = head_opt.update(psi, list(grads[len(enc_params):]), state)
            else:
                grads = torch.autograd.grad(loss, psi, create_graph=True)
                psi, state = head_opt.update(psi, list(grads), state)
        feats = problem.features(val_batch, dict(zip(enc_names, enc_params)) if unroll_encoder else None)
        val_loss = problem.ft_loss(problem.head_logits(dict(zip(head_names, psi)), feats), val_batch)
    g = torch.autograd.grad(val_loss, theta, materialize_grads=True)
    return [t.detach() for t in g], [p.detach() for p in psi], state.detached(), float(val_loss.detach())


def converged_head_val_grad(problem: BilevelProblem, ft_train_batches: Sequence[Any], val_batch: Any, cfg: HypergradConfig) -> tuple[Tensors, float]:
    """g = dL_val(θ, ψ*(θ))/dθ with ψ* the L2-logistic head fitted to convergence on the MetaFT-train batches: the probe's
    objective (``metapt.engine.alignment.val_grad_through_head``), where the head is re-fitted to every θ rather than
    stepped K times. Returns (g over ``problem.theta()``, L_val)."""
    theta = problem.theta()
    with module_modes([problem.encoder], train=cfg.unroll_encoder_mode == "train"):
        x_tr = torch.cat([problem.features(b) for b in ft_train_batches])
        y_tr = torch.cat([problem.ft_targets(b) for b in ft_train_batches]).double()
        x_va, y_va = problem.features(val_batch), problem.ft_targets(val_batch).double()
    # tol 1e-8: float32 features of a few dozen examples, nearly separable at small λ, stall Newton's gradient near 1e-10
    lam = cfg.converged_head_l2 or choose_lambda(x_tr.detach(), y_tr, x_va.detach(), y_va, tol=1e-8)[0]
    heads = fit_l2_logistic(x_tr.detach(), y_tr, lam, tol=1e-8)
    enc = [t for t in problem.encoder.parameters() if t.requires_grad]
    total, _ = val_grad_through_head(x_tr, y_tr, x_va, y_va, heads, enc)
    by_id = {id(t): g for t, g in zip(enc, total)}
    g = [by_id[id(t)].detach() if id(t) in by_id else torch.zeros_like(t) for t in theta]  # the PT head does not reach L_val
    return g, float(mean_bce(x_va.detach(), heads.W, y_va))


def pt_gradient_graph(problem: BilevelProblem, pt_batches: Sequence[Any], cfg: HypergradConfig) -> PTGraph:
    """∇θ L_PT averaged over ``pt_batches``, with the graph kept for second derivatives."""
    modules = [problem.encoder, problem.pt_head]
    with module_modes(modules, train=True, bn=cfg.bn_mode, dropout=cfg.dropout), preserved_buffers(modules, cfg.restore_bn):
        loss = sum(problem.pt_loss(b) for b in pt_batches) / len(pt_batches)
    grads = torch.autograd.grad(loss, problem.theta(), create_graph=True, materialize_grads=True)
    return PTGraph(loss, list(grads))


def hvp(graph: PTGraph, theta: Tensors, vec: Tensors) -> Tensors:
    """H·vec as one backward pass through the stored gradient graph (no new graph)."""
    out = torch.autograd.grad(graph.grads, theta, grad_outputs=vec, retain_graph=True, materialize_grads=True)
    return list(out)


def _dot(a: Tensors, b: Tensors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _norm(a: Tensors) -> float:
    """‖a‖ accumulated in float64 (for φ-sized vectors: the normalisation of the hypergradient)."""
    return math.sqrt(float(sum((x.double() ** 2).sum() for x in a)))


def _fast_norm(a: Tensors) -> float:
    """‖a‖ from per-tensor norms in the tensors' own dtype, combined in float64: for θ-sized vectors
    (Neumann growth, power iteration). ``_norm``'s float64 copy of θ costs about a PT step at the
    paper's size; this one a hundredth of that, at float32 accuracy (float64 for float64 tensors)."""
    if not a:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t).double() for t in a])))


def power_iteration(graph: PTGraph, theta: Tensors, iterations: int, seed: int = 0) -> float:
    """Largest-magnitude eigenvalue of H by power iteration (a private RNG keeps runs deterministic)."""
    gen = torch.Generator().manual_seed(seed)
    vec = [torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device) for t in theta]
    lam = 0.0
    for _ in range(iterations):
        n = _fast_norm(vec)
        if n == 0:
            return 0.0
        vec = [v / n for v in vec]
        hv = hvp(graph, theta, vec)
        lam = float(_dot(vec, hv))
        vec = hv
    return abs(lam)


def neumann_inverse(graph: PTGraph, theta: Tensors, g: Tensors, alpha: float, terms: int, damping: float) -> tuple[Tensors, float]:
    """v = α Σ_{j=0..P} (I − α(H + δI))ʲ g and the growth ‖p_P‖/‖p_0‖."""
    p = [t.clone() for t in g]
    v = [t.clone() for t in g]
    for _ in range(terms):
        hp = hvp(graph, theta, p)
        p = [pi - alpha * (hi + damping * pi) for pi, hi in zip(p, hp)]
        v = [vi + pi for vi, pi in zip(v, p)]
    g_norm = _fast_norm(g)
    growth = _fast_norm(p) / g_norm if g_norm > 0 else 0.0
    return [alpha * vi for vi in v], growth


def neumann_skip_bound(alpha: float, a_norm: float, terms: int) -> float:
    """A bound on ‖v − v̂‖ / ‖v̂‖, where v = α Σ_{j=0..P} (I − αA)ʲ g is the Neumann estimate and
    v̂ = α (P + 1) g the same with every (I − αA)ʲ replaced by I (no Hessian-vector product).

    ‖(I − αA)ʲ − I‖ ≤ (1 + α‖A‖)ʲ − 1 for the spectral norm, so ‖v − v̂‖ ≤ α Σ_{j=1..P} ((1 + α‖A‖)ʲ − 1) ‖g‖,
    and ‖v̂‖ = α (P + 1) ‖g‖. For P = 1 it is α‖A‖ / 2: at the paper's α = PT lr = 1e-4 and ‖A‖ ≈ λmax ~ 10,
    the one HVP changes v by at most 5e-4 of its size. ``a_norm`` is ‖H + δI‖ ≤ |λ|max(H) + δ; with
    |λ|max from power iteration (an estimate from below, refreshed every ``power_refresh`` hyper-steps)
    the bound is an estimate too, exact only as far as that is.
    """
    if terms == 0:
        return 0.0
    x = alpha * a_norm
    return sum((1 + x) ** j - 1 for j in range(1, terms + 1)) / (terms + 1)


def exact_inverse(graph: PTGraph, theta: Tensors, g: Tensors, damping: float, max_dim: int = 5000) -> Tensors:
    """(H + δI)⁻¹g by a dense solve; H is assembled column by column (tiny θ only)."""
    n = sum(t.numel() for t in theta)
    if n > max_dim:
        raise ValueError(f"inverse='exact' needs |θ| ≤ {max_dim}, got {n}; use inverse='neumann'")
    cols = []
    for i in range(n):
        e = torch.zeros(n, dtype=theta[0].dtype, device=theta[0].device)
        e[i] = 1
        cols.append(torch.cat([h.reshape(-1) for h in hvp(graph, theta, _unflatten(e, theta))]))
    h = torch.stack(cols, dim=1) + damping * torch.eye(n, dtype=e.dtype, device=e.device)
    flat_g = torch.cat([t.reshape(-1) for t in g])
    return _unflatten(torch.linalg.solve(h, flat_g), theta)


def _unflatten(flat: torch.Tensor, like: Tensors) -> Tensors:
    out, i = [], 0
    for t in like:
        out.append(flat[i : i + t.numel()].view_as(t))
        i += t.numel()
    return out


def mixed_term(graph: PTGraph, phi: Tensors, v: Tensors) -> Tensors:
    """vᵀM = ∂(vᵀ∇θ L_PT)/∂φ as one VJP; φ entries that do not reach the loss get zeros."""
    return list(torch.autograd.grad(graph.grads, phi, grad_outputs=v, retain_graph=False, materialize_grads=True))


def choose_alpha(cfg: HypergradConfig, pt_lr: float, lambda_max: float | None) -> float:
    if cfg.alpha_mode == "pt_lr":
        return pt_lr
    if cfg.alpha_mode == "fixed":
        return cfg.alpha
    if not lambda_max:
        raise ValueError("alpha_mode='power' needs a λmax estimate")
    return cfg.alpha_power_scale / lambda_max


# ---- the hyper-step ------------------------------------------------------------------------
def hypergradient(
    problem: BilevelProblem,
    head_opt: FunctionalOptimizer,
    head_state: OptState,
    ft_train_batches: Sequence[Any],
    val_batch: Any,
    pt_batches: Sequence[Any],
    cfg: HypergradConfig,
    *,
    pt_lr: float,
    lambda_max: float | None = None,
    pt_graph: PTGraph | None = None,
    catch_up_steps: int = 0,
) -> HypergradResult:
    """Estimate dL_val/dφ at the current θ. ``pt_graph`` lets the caller reuse its PT step's graph."""
    if cfg.ft_objective == "converged_head":  # the online head is left as it is: this objective does not step it
        g, val_loss = converged_head_val_grad(problem, ft_train_batches, val_batch, cfg)
        psi, state = [t.detach() for t in problem.named_head_params().values()], head_state
    else:
        g, psi, state, val_loss = unrolled_val_grad(problem, head_opt, head_state, ft_train_batches, val_batch, cfg, catch_up_steps)
    graph = pt_graph if pt_graph is not None else pt_gradient_graph(problem, pt_batches, cfg)
    theta, phi = problem.theta(), problem.phi()
    if cfg.needs_lambda_max and lambda_max is None:
        lambda_max = power_iteration(graph, theta, cfg.power_iterations)
    alpha = choose_alpha(cfg, pt_lr, lambda_max)
    growth, bound = 1.0, None
    if cfg.skips_neumann:
        bound = neumann_skip_bound(alpha, lambda_max + cfg.damping, cfg.neumann_terms)
    skipped = bound is not None and bound <= cfg.neumann_skip_tol
    if cfg.inverse == "exact":
        v = exact_inverse(graph, theta, g, cfg.damping)
    elif skipped:
        v = [alpha * (cfg.neumann_terms + 1) * t for t in g]
    else:
        v, growth = neumann_inverse(graph, theta, g, alpha, cfg.neumann_terms, cfg.damping)
        if lambda_max is not None and alpha * (lambda_max + cfg.damping) >= 2:
            warnings.warn(f"Neumann series diverges: α·λmax = {alpha * lambda_max:.3g} ≥ 2", NeumannDivergenceWarning, stacklevel=2)
        elif cfg.neumann_terms >= 2 and growth ** (1 / cfg.neumann_terms) > 1.1:
            warnings.warn(f"Neumann terms grow ×{growth:.3g} over P={cfg.neumann_terms}: α too large or H indefinite; damp it", NeumannDivergenceWarning, stacklevel=2)
    hyper = [-m for m in mixed_term(graph, phi, v)]
    raw_norm = _norm(hyper)
    if cfg.normalise == "centred":
        # With Adam on θ, scaling every task weight by one factor barely changes PT, so the common
        # component of a weight-vector hypergradient carries no signal; keep only the contrasts.
        hyper = [h - h.mean() for h in hyper]
    norm = _norm(hyper)
    if cfg.normalise in ("rms", "centred") and norm > 0:
        rms = norm / math.sqrt(sum(h.numel() for h in hyper))
        hyper = [h / rms for h in hyper]
    return HypergradResult(hyper, raw_norm, psi, state, val_loss, float(graph.loss.detach()), alpha, growth, lambda_max, bound, skipped)
