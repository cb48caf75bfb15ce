"""The signal-ceiling maths (metapt.engine.alignment) in float64: all-task alignments by one double backward
against the per-task loop, the Newton head's optimality, the implicit-function gradient through the head
against finite differences, and the PPI probe on a tiny synthetic set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from metapt.engine.alignment import choose_lambda, fit_l2_logistic, mean_bce, rank_stability, task_alignments, val_grad_through_head

DT = torch.float64


def _toy(seed=0, n=40, d=5, h=4, T=7, n_ft=3):
    g = torch.Generator().manual_seed(seed)
    enc = nn.Sequential(nn.Linear(d, h), nn.Tanh()).to(DT)
    head = nn.Linear(h, T).to(DT)
    for p in [*enc.parameters(), *head.parameters()]:
        with torch.no_grad():
            p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=DT))
    x = torch.randn(n, d, generator=g, dtype=DT)
    y = (torch.rand(n, T, generator=g, dtype=DT) < 0.4).to(DT)
    x_ft = torch.randn(2 * n, d, generator=g, dtype=DT)
    y_ft = (torch.rand(2 * n, n_ft, generator=g, dtype=DT) < 0.5).to(DT)
    return enc, head, x, y, x_ft, y_ft, g


def _per_task(enc, head):
    return lambda b: (F.binary_cross_entropy_with_logits(head(enc(b[0])), b[1], reduction="none").sum(0), len(b[0]))


def test_all_task_alignments_equal_the_per_task_gradient_dot_products_and_ignore_batching():
    enc, head, x, y, _, _, g = _toy()
    params = list(enc.parameters())
    vs = {"a": [torch.randn(p.shape, generator=g, dtype=DT) for p in params], "b": [torch.randn(p.shape, generator=g, dtype=DT) for p in params]}
    one = task_alignments(_per_task(enc, head), params, [(x, y)], vs)
    chunks = task_alignments(_per_task(enc, head), params, [(x[i:i + 7], y[i:i + 7]) for i in range(0, len(x), 7)], vs)
    for name, v in vs.items():
        explicit = []
        for t in range(y.shape[1]):
            loss_t = F.binary_cross_entropy_with_logits(head(enc(x))[:, t], y[:, t])  # the mean over examples: ℓ̄_t
            grads = torch.autograd.grad(loss_t, params)
            explicit.append(sum((a * b).sum() for a, b in zip(grads, v)))
        explicit = torch.stack(explicit)
        assert torch.allclose(one[name], explicit, rtol=1e-12, atol=1e-14)
        assert torch.allclose(chunks[name], explicit, rtol=1e-12, atol=1e-14)


def test_newton_head_is_stationary_and_matches_the_regularised_objective():
    _, _, _, _, x_ft, y_ft, _ = _toy(1)
    lam = 0.03
    heads = fit_l2_logistic(x_ft, y_ft, lam)
    W = heads.W.clone().requires_grad_(True)
    obj = sum(F.binary_cross_entropy_with_logits(torch.cat([x_ft, torch.ones(len(x_ft), 1, dtype=DT)], 1) @ W[t], y_ft[:, t])
              + lam / 2 * W[t, :-1].pow(2).sum() for t in range(W.shape[0]))
    (grad,) = torch.autograd.grad(obj, W, create_graph=True)
    assert float(grad.detach().abs().max()) < 1e-12 and heads.iterations < 20
    hess_t0 = torch.stack([torch.autograd.grad(grad[0, j], W, retain_graph=True)[0][0] for j in range(W.shape[1])])
    assert torch.allclose(hess_t0, heads.H[0], atol=1e-12)
    with pytest.raises(ValueError, match="lam must be > 0"):
        fit_l2_logistic(x_ft, y_ft, 0.0)


def test_gradient_through_the_refitted_head_matches_finite_differences():
    enc, _, _, _, x_ft, y_ft, g = _toy(2)
    params = list(enc.parameters())
    tr, va, lam = slice(0, 50), slice(50, 80), 0.02

    def refit_val_loss() -> float:
        with torch.no_grad():
            f_tr, f_va = enc(x_ft[tr]), enc(x_ft[va])
            return float(mean_bce(f_va, fit_l2_logistic(f_tr, y_ft[tr], lam, tol=1e-14).W, y_ft[va]))

    f_tr, f_va = enc(x_ft[tr]), enc(x_ft[va])
    heads = fit_l2_logistic(f_tr.detach(), y_ft[tr], lam, tol=1e-14)
    total, fixed = val_grad_through_head(f_tr, y_ft[tr], f_va, y_ft[va], heads, params)
    d = [torch.randn(p.shape, generator=g, dtype=DT) for p in params]
    eps = 1e-5
    with torch.no_grad():
        for p, di in zip(params, d):
            p.add_(eps * di)
        up = refit_val_loss()
        for p, di in zip(params, d):
            p.sub_(2 * eps * di)
        down = refit_val_loss()
        for p, di in zip(params, d):
            p.add_(eps * di)
    fd = (up - down) / (2 * eps)
    analytic = float(sum((a * b).sum() for a, b in zip(total, d)))
    held = float(sum((a * b).sum() for a, b in zip(fixed, d)))
    assert abs(analytic - fd) < 1e-8 * max(1.0, abs(fd))
    assert abs(held - fd) > 100 * abs(analytic - fd)  # the head's response is not negligible: the fixed-head gradient misses it


def test_rank_stability():
    a = np.arange(10.0)
    assert rank_stability([a, a + 1, 2 * a]) == pytest.approx(1.0)
    assert rank_stability([a, -a]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        rank_stability([a])


def test_ppi_signal_ceiling_is_deterministic_leaves_the_model_alone_and_scores_every_task():
    from metapt.ppi import synth
    from metapt.ppi.model import GIN
    from metapt.ppi.probe import signal_ceiling
    from metapt.ppi.problem import MultitaskPPI

    graphs, truth = synth.generate(synth.preset("discriminating", n_graphs=160, n_pt_tasks=24), seed=0)
    torch.manual_seed(0)
    problem = MultitaskPPI.full(GIN(2, 16, 0.2), 24, 40)
    problem.encoder.train()
    before = [p.detach().clone() for p in problem.theta()]
    idx = np.arange(len(graphs))
    kw = dict(truth=truth, bootstrap=3, batch_size=64)
    a = signal_ceiling(problem, graphs, idx[:100], idx[100:130], idx[130:], **kw)
    b = signal_ceiling(problem, graphs, idx[:100], idx[100:130], idx[130:], **kw)
    assert a == b and problem.encoder.training
    assert all(torch.equal(p, q) for p, q in zip(before, problem.theta()))
    assert len(a["scores_through_head"]) == len(a["scores_fixed_head"]) == 24
    assert 0 <= a["auc_through_head"] <= 1 and -1 <= a["stability_through_head"] <= 1 and len(a["auc_through_head_bootstrap"]) == 3
    assert a["lam"] in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def test_ppi_signal_ceiling_equals_encoding_every_resample_on_its_own():
    """The probe encodes MetaFT once and gathers each resample's rows; that must equal encoding each resample alone."""
    from metapt.engine.hypergrad import module_modes
    from metapt.ppi import synth
    from metapt.ppi.model import GIN
    from metapt.ppi.probe import _batches, _ft_features, signal_ceiling
    from metapt.ppi.problem import MultitaskPPI

    graphs, truth = synth.generate(synth.preset("discriminating", n_graphs=160, n_pt_tasks=24), seed=1)
    torch.manual_seed(1)
    problem = MultitaskPPI.full(GIN(2, 16, 0.2), 24, 40)
    idx = np.arange(len(graphs))
    pt, tr0, va0 = idx[:100], idx[100:130], idx[130:]
    got = signal_ceiling(problem, graphs, pt, tr0, va0, truth=truth, bootstrap=2, seed=5, batch_size=64)

    params = [p for p in problem.encoder.parameters() if p.requires_grad]
    rng = np.random.default_rng(5)
    draws = [(tr0, va0)] + [(rng.choice(tr0, len(tr0)), rng.choice(va0, len(va0))) for _ in range(2)]
    with module_modes([problem.encoder, problem.pt_head], train=False):
        vectors = {}
        for i, (tr, va) in enumerate(draws):
            (x_tr, y_tr), (x_va, y_va) = _ft_features(problem, graphs, tr, "cpu"), _ft_features(problem, graphs, va, "cpu")
            if i == 0:
                lam, _ = choose_lambda(x_tr.detach(), y_tr, x_va.detach(), y_va)
            total, fixed = val_grad_through_head(x_tr, y_tr, x_va, y_va, fit_l2_logistic(x_tr.detach(), y_tr, lam), params)
            vectors[f"through{i}"] = total
            if i == 0:
                vectors["fixed"] = fixed
        ref = task_alignments(lambda b: (problem.per_task_pt_loss(b), b.num_graphs), params, _batches(graphs, pt, 64, "cpu"), vectors)
    for name, key in (("through0", "scores_through_head"), ("fixed", "scores_fixed_head")):
        r = ref[name].numpy()
        assert np.allclose(got[key], r, rtol=1e-4, atol=1e-5 * np.abs(r).max()), name
    assert got["stability_through_head"] == pytest.approx(rank_stability([ref["through1"].numpy(), ref["through2"].numpy()]), abs=1e-6)
