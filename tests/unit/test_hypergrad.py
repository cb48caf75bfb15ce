"""Hypergradient correctness in float64: closed form, Neumann convergence, sign, finite differences."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from metapt.engine import HypergradConfig, hypergradient
from metapt.engine.functional_optim import FunctionalOptimizer
from metapt.engine.hypergrad import NeumannDivergenceWarning, head_step, hvp, power_iteration, pt_gradient_graph, unrolled_val_grad
from tests.unit.toys import LinearMultitask, MLPMultitask, multitask_data


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """By hand in float64: F.cosine_similarity clamps norms at 1e-8, and hypergradients can be that small."""
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def exact_hypergradient(prob: LinearMultitask, opt: FunctionalOptimizer, K: int) -> torch.Tensor:
    """Autograd through E*(λ) = A(λ)⁻¹b(λ), then K FT steps, then L_val: no IFT anywhere."""
    logits = prob.meta.logits.detach().clone().requires_grad_(True)
    E = prob.optimal_encoder(logits)
    psi = [prob.ft_head.weight.detach().clone().requires_grad_(True)]
    state = opt.init_state(psi)
    for _ in range(K):
        loss = ((prob.X_ft @ E.T @ psi[0].T - prob.Y_ft) ** 2).mean()
        grads = torch.autograd.grad(loss, psi, create_graph=True)
        psi, state = opt.update(psi, list(grads), state)
    val = ((prob.X_val @ E.T @ psi[0].T - prob.Y_val) ** 2).mean()
    return torch.autograd.grad(val, logits)[0]


def engine_hypergradient(prob, opt, K, cfg, lambda_max=None):
    with torch.no_grad():
        prob.encoder.weight.copy_(prob.optimal_encoder(prob.meta.logits))
    state = opt.init_state([prob.ft_head.weight])
    res = hypergradient(prob, opt, state, [(prob.X_ft, prob.Y_ft)] * K, (prob.X_val, prob.Y_val), [(prob.X, prob.Y)], cfg, pt_lr=1e-4, lambda_max=lambda_max)
    return res.grads[0]


@pytest.mark.parametrize("weigh", ["tasks", "examples"])
@pytest.mark.parametrize("kind,K", [("sgd", 1), ("sgd", 3), ("adam", 2)])
def test_explicit_ift_matches_closed_form(kind, K, weigh):
    prob = LinearMultitask(weigh=weigh)
    opt = FunctionalOptimizer(kind, lr=0.05)
    exact = exact_hypergradient(prob, opt, K)
    ift = engine_hypergradient(prob, opt, K, HypergradConfig(inverse="exact"))
    assert exact.norm() > 1e-6  # a non-trivial answer
    assert rel_err(ift, exact) <= 1e-10


def at_optimum(K: int):
    """The linear problem at θ = E*(λ), its exact hypergradient and λmax of its PT Hessian."""
    prob = LinearMultitask()
    opt = FunctionalOptimizer("sgd", lr=0.05)
    exact = exact_hypergradient(prob, opt, K)
    with torch.no_grad():
        prob.encoder.weight.copy_(prob.optimal_encoder(prob.meta.logits))
    lam = power_iteration(pt_gradient_graph(prob, [(prob.X, prob.Y)], HypergradConfig()), prob.theta(), 200)
    return prob, opt, exact, lam


def test_neumann_converges_to_closed_form_as_p_grows():
    prob, opt, exact, lam = at_optimum(2)
    errors = {}
    for P in (0, 10, 100, 400, 1500):
        cfg = HypergradConfig(neumann_terms=P, alpha_mode="fixed", alpha=1.0 / lam)
        errors[P] = rel_err(engine_hypergradient(prob, opt, 2, cfg), exact)
    values = list(errors.values())
    assert all(b < a for a, b in zip(values, values[1:])), errors
    assert errors[1500] <= 1e-6, errors


def test_neumann_diverges_past_two_and_warns():
    prob, opt, exact, lam = at_optimum(1)
    errs = []
    for P in (20, 60):
        cfg = HypergradConfig(neumann_terms=P, alpha_mode="fixed", alpha=2.3 / lam)
        with pytest.warns(NeumannDivergenceWarning):
            errs.append(rel_err(engine_hypergradient(prob, opt, 1, cfg, lambda_max=lam), exact))
    assert errs[1] > errs[0] > 1.0
    # and without a λmax estimate, the growth of the terms alone triggers the warning
    with pytest.warns(NeumannDivergenceWarning):
        engine_hypergradient(prob, opt, 1, HypergradConfig(neumann_terms=20, alpha_mode="fixed", alpha=2.3 / lam))
    # inside the convergence range there is no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeumannDivergenceWarning)
        engine_hypergradient(prob, opt, 1, HypergradConfig(neumann_terms=20, alpha_mode="fixed", alpha=1.0 / lam), lambda_max=lam)


def _mlp_setup(seed=0):
    prob = MLPMultitask(dropout=0.0, dtype=torch.float64, seed=seed)
    data = multitask_data(n=48, dtype=torch.float64, seed=seed)
    collate = lambda items: tuple(torch.stack(t) for t in zip(*items))  # noqa: E731
    return prob, collate(data[:16]), collate(data[16:32]), collate(data[32:48])


def test_unrolled_one_pt_step_agrees_with_ift_p0():
    """Sign check: differentiate through one SGD PT step (T=1) versus IFT with P=0 and α = η."""
    prob, pt_batch, ft_batch, val_batch = _mlp_setup()
    eta = 1e-3
    opt = FunctionalOptimizer("sgd", lr=0.1)
    theta, phi = prob.theta(), prob.phi()
    n_enc = len(prob.named_encoder_params())
    prob.encoder.train(), prob.pt_head.train()
    grads = torch.autograd.grad(prob.pt_loss(pt_batch), theta, create_graph=True)
    theta1 = [t - eta * g for t, g in zip(theta, grads)]
    enc1 = dict(zip(prob.named_encoder_params(), theta1[:n_enc]))
    names = list(prob.named_head_params())
    psi = [p.detach().requires_grad_(True) for p in prob.named_head_params().values()]
    prob.encoder.eval()
    loss = prob.ft_loss(prob.head_logits(dict(zip(names, psi)), prob.features(ft_batch, enc1)), ft_batch)
    psi, _ = opt.update(psi, list(torch.autograd.grad(loss, psi, create_graph=True)), opt.init_state(psi))
    val = prob.ft_loss(prob.head_logits(dict(zip(names, psi)), prob.features(val_batch, enc1)), val_batch)
    unrolled = torch.autograd.grad(val, phi)[0]
    cfg = HypergradConfig(neumann_terms=0, alpha_mode="fixed", alpha=eta)
    ift = hypergradient(prob, opt, opt.init_state(psi), [ft_batch], val_batch, [pt_batch], cfg, pt_lr=eta).grads[0]
    assert cosine(unrolled, ift) >= 0.99


@pytest.mark.parametrize("unroll", ["head", "encoder"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_unrolled_ft_gradient_matches_finite_differences(unroll, kind):
    prob, _, ft_batch, val_batch = _mlp_setup(seed=1)
    cfg = HypergradConfig(unroll=unroll)
    opt = FunctionalOptimizer(kind, lr=0.05)
    head = list(prob.named_head_params().values())
    state = opt.init_state(head)
    for _ in range(3):  # a non-trivial carried Adam state
        _, state = opt.update(head, [torch.randn_like(h) for h in head], state)
    batches = [ft_batch, ft_batch]
    g, _, _, _ = unrolled_val_grad(prob, opt, state, batches, val_batch, cfg)
    theta = prob.theta()
    gen = torch.Generator().manual_seed(3)
    direction = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in theta]
    eps = 1e-6

    def loss_at(sign):
        with torch.no_grad():
            for t, d in zip(theta, direction):
                t.add_(sign * eps * d)
        value = unrolled_val_grad(prob, opt, state, batches, val_batch, cfg)[3]
        with torch.no_grad():
            for t, d in zip(theta, direction):
                t.sub_(sign * eps * d)
        return value

    fd = (loss_at(1) - loss_at(-1)) / (2 * eps)
    analytic = float(sum((gi * d).sum() for gi, d in zip(g, direction)))
    assert abs(analytic) > 1e-4
    assert math.isclose(fd, analytic, rel_tol=1e-6, abs_tol=1e-10)


def test_catch_up_steps_are_plain_head_steps_before_the_unroll():
    """unrolled_val_grad(catch_up_steps=n) = n online head steps on the first FT batch, then the same unroll."""
    prob, _, ft_batch, val_batch = _mlp_setup(seed=2)
    cfg, opt = HypergradConfig(), FunctionalOptimizer("adam", lr=0.05)
    head = list(prob.named_head_params().values())
    state = opt.init_state(head)
    start = [t.detach().clone() for t in head]
    g, psi, out_state, val = unrolled_val_grad(prob, opt, state, [ft_batch], val_batch, cfg, catch_up_steps=4)
    prob.encoder.eval()
    with torch.no_grad():
        feats = prob.features(ft_batch)
    prob.encoder.train()
    manual, manual_state = head, state
    for _ in range(4):
        manual, manual_state, _ = head_step(prob, opt, manual, manual_state, feats, ft_batch)
    with torch.no_grad():
        for t, v in zip(head, manual):
            t.copy_(v)
    g_ref, psi_ref, state_ref, val_ref = unrolled_val_grad(prob, opt, manual_state, [ft_batch], val_batch, cfg)
    assert out_state.step == state_ref.step == 5
    assert val == pytest.approx(val_ref, rel=1e-12)
    for a, b in zip(g + psi, g_ref + psi_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(manual[0], start[0])  # the catch-up moved ψ


def test_bn_buffers_restored_only_when_asked():
    prob = MLPMultitask(dtype=torch.float64)
    data = multitask_data(n=32, dtype=torch.float64)
    batch = tuple(torch.stack(t) for t in zip(*data))
    bn = prob.encoder[1]
    before = bn.running_mean.clone()
    graph = pt_gradient_graph(prob, [batch], HypergradConfig(restore_bn=True))
    assert torch.equal(bn.running_mean, before)
    assert all(torch.isfinite(h).all() for h in hvp(graph, prob.theta(), graph.grads))  # the graph still works
    pt_gradient_graph(prob, [batch], HypergradConfig(restore_bn=False))
    assert not torch.equal(bn.running_mean, before)


def test_rms_normalisation_gives_unit_rms_and_keeps_direction():
    prob, pt_batch, ft_batch, val_batch = _mlp_setup()
    opt = FunctionalOptimizer("adam", lr=1e-3)
    state = opt.init_state(list(prob.named_head_params().values()))
    args = (prob, opt, state, [ft_batch], val_batch, [pt_batch])
    paper = hypergradient(*args, HypergradConfig(restore_bn=True), pt_lr=1e-4)
    rms = hypergradient(*args, HypergradConfig(normalise="rms", restore_bn=True), pt_lr=1e-4)
    g = rms.grads[0]
    assert math.isclose(float(g.pow(2).mean().sqrt()), 1.0, rel_tol=1e-9)
    assert cosine(g, paper.grads[0]) > 1 - 1e-9
    assert paper.raw_norm == pytest.approx(rms.raw_norm)
    centred = hypergradient(*args, HypergradConfig(normalise="centred", restore_bn=True), pt_lr=1e-4).grads[0]
    expected = paper.grads[0] - paper.grads[0].mean()
    assert abs(float(centred.mean())) < 1e-12 and cosine(centred, expected) > 1 - 1e-9
    assert math.isclose(float(centred.pow(2).mean().sqrt()), 1.0, rel_tol=1e-9)


def _dense_hessian_norm(prob) -> float:
    """‖H‖ (spectral) of the PT Hessian, assembled column by column in float64 (small θ only)."""
    graph = pt_gradient_graph(prob, [(prob.X, prob.Y)], HypergradConfig())
    theta = prob.theta()
    n = sum(t.numel() for t in theta)
    cols = []
    for i in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[i] = 1
        parts, k = [], 0
        for t in theta:
            parts.append(e[k:k + t.numel()].view_as(t))
            k += t.numel()
        cols.append(torch.cat([h.reshape(-1) for h in hvp(graph, theta, parts)]))
    return float(torch.linalg.eigvalsh(torch.stack(cols, 1)).abs().max())


@pytest.mark.parametrize("terms", [1, 3])
def test_neumann_skip_bound_bounds_what_the_hvps_change(terms):
    """‖v − α(P+1)g‖ / ‖α(P+1)g‖ ≤ neumann_skip_bound(α, ‖H‖, P) for α from tiny to 1/‖H‖, with ‖H‖ exact."""
    from metapt.engine.hypergrad import neumann_inverse, neumann_skip_bound

    prob, opt, _, _ = at_optimum(1)
    h_norm = _dense_hessian_norm(prob)
    graph = pt_gradient_graph(prob, [(prob.X, prob.Y)], HypergradConfig())
    torch.manual_seed(0)
    g = [torch.randn_like(t) for t in prob.theta()]
    for scale in (1e-6, 1e-4, 1e-2, 0.3, 1.0):
        alpha = scale / h_norm
        v, _ = neumann_inverse(graph, prob.theta(), g, alpha, terms, 0.0)
        v_hat = [alpha * (terms + 1) * t for t in g]
        change = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(v, v_hat))) / math.sqrt(sum(float((b ** 2).sum()) for b in v_hat))
        bound = neumann_skip_bound(alpha, h_norm, terms)
        assert change <= bound * (1 + 1e-12), (scale, change, bound)
        assert change >= 0.05 * bound or scale < 1e-3  # not vacuous where it matters: within 20× of the truth


def test_neumann_skip_drops_the_hvps_only_where_the_bound_allows(monkeypatch):
    """With neumann_skip_tol: where the bound is within it no HVP runs and the hypergradient agrees with the
    full one to the bound's order; where it is not, the series runs and the result is the full one, bit for bit."""
    from metapt.engine import hypergrad as hg

    prob, opt, _, lam = at_optimum(1)
    calls = []
    real_hvp = hg.hvp
    monkeypatch.setattr(hg, "hvp", lambda *a, **k: calls.append(1) or real_hvp(*a, **k))
    for alpha, skipped in ((1e-5 / lam, True), (0.5 / lam, False)):
        full_cfg = HypergradConfig(neumann_terms=1, alpha_mode="fixed", alpha=alpha)
        calls.clear()
        full = engine_hypergradient(prob, opt, 1, full_cfg, lambda_max=lam)
        assert len(calls) == 1
        calls.clear()
        skip = engine_hypergradient(prob, opt, 1, full_cfg.model_copy(update={"neumann_skip_tol": 1e-3}), lambda_max=lam)
        bound = hg.neumann_skip_bound(alpha, lam, 1)
        assert (bound <= 1e-3) == skipped and len(calls) == (0 if skipped else 1)
        if skipped:
            assert rel_err(skip, full) <= 10 * bound and cosine(skip, full) >= 1 - bound
        else:
            assert torch.equal(skip, full)


class LogisticFT(LinearMultitask):
    """The closed-form PT problem with 0/1 FT labels and a logistic FT objective (for ``ft_objective: converged_head``)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.Y_ft, self.Y_val = (self.Y_ft > 0).double(), (self.Y_val > 0).double()

    def ft_targets(self, batch):
        return batch[1]

    def ft_loss(self, logits, batch):
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch[1])


def exact_converged_head_hypergradient(prob: LogisticFT, lam: float, newton_steps: int = 40) -> torch.Tensor:
    """Autograd through E*(λ) = A⁻¹b and through every step of a Newton solve of the L2-logistic head (no IFT anywhere):
    at the fixed point Newton's map has zero Jacobian in W, so this converges to the derivative of ψ*(E*(λ))."""
    logits = prob.meta.logits.detach().clone().requires_grad_(True)
    E = prob.optimal_encoder(logits)
    aug = lambda x: torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)  # noqa: E731
    xt, xv = aug(prob.X_ft @ E.T), aug(prob.X_val @ E.T)
    reg = torch.full((xt.shape[1],), lam, dtype=xt.dtype)
    reg[-1] = 0.0
    W = torch.zeros(prob.Y_ft.shape[1], xt.shape[1], dtype=xt.dtype)
    for _ in range(newton_steps):
        p = torch.sigmoid(xt @ W.T)
        grad = ((p - prob.Y_ft).T @ xt) / len(xt) + reg * W
        hess = torch.einsum("ni,nt,nj->tij", xt, p * (1 - p), xt) / len(xt) + torch.diag_embed(reg.expand_as(W))
        W = W - torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
    val = torch.nn.functional.binary_cross_entropy_with_logits(xv @ W.T, prob.Y_val)
    return torch.autograd.grad(val, logits)[0]


def test_converged_head_objective_matches_the_closed_form_through_newton():
    prob = LogisticFT(n=40)
    opt = FunctionalOptimizer("sgd", lr=0.05)
    exact = exact_converged_head_hypergradient(prob, lam=0.1)
    cfg = HypergradConfig(inverse="exact", ft_objective="converged_head", converged_head_l2=0.1)
    head_before = prob.ft_head.weight.detach().clone()
    got = engine_hypergradient(prob, opt, 1, cfg)
    assert exact.norm() > 1e-6
    assert rel_err(got, exact) <= 1e-8
    assert torch.equal(prob.ft_head.weight, head_before)  # the online head is not this objective's
    # the unrolled objective gives a different answer on the same problem: the option is not a no-op
    assert rel_err(engine_hypergradient(prob, opt, 1, HypergradConfig(inverse="exact")), exact) > 1e-3
    # λ chosen on the MetaFT-val batch when not given
    chosen = engine_hypergradient(prob, opt, 1, cfg.model_copy(update={"converged_head_l2": None}))
    assert torch.isfinite(chosen).all() and chosen.norm() > 0


def test_converged_head_needs_the_problems_ft_targets():
    prob = LinearMultitask()
    with pytest.raises(NotImplementedError, match="ft_targets"):
        engine_hypergradient(prob, FunctionalOptimizer("sgd", lr=0.05), 1, HypergradConfig(inverse="exact", ft_objective="converged_head", converged_head_l2=0.1))
