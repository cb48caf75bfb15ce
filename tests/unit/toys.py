"""Small bilevel problems for engine tests: a quadratic one with a closed form, and a multitask MLP."""

from __future__ import annotations

import torch
from torch import nn

from metapt.engine import BilevelProblem, ExampleWeights, TaskWeights


class LinearMultitask(BilevelProblem):
    """Task-weighted least squares on a linear encoder E (θ), fixed task directions U, and a ridge.

    L_PT(E, λ) = mean_t w_t · mean_i (u_tᵀ E x_i − y_it)² + ρ/2 ‖E‖², quadratic in E, so
    E*(λ) = A(λ)⁻¹ b(λ) in closed form. FT: a linear head ψ on E x, mean-squared error.
    """

    def __init__(self, d=4, h=3, n_tasks=5, n_ft_out=2, n=12, rho=0.3, seed=0, weigh="tasks"):
        gen = torch.Generator().manual_seed(seed)
        dt = torch.float64
        self.encoder = nn.Linear(d, h, bias=False).to(dt)
        self.pt_head = nn.Module()
        self.pt_head.register_buffer("U", torch.randn(h, n_tasks, generator=gen, dtype=dt))
        self.ft_head = nn.Linear(h, n_ft_out, bias=False).to(dt)
        with torch.no_grad():
            self.encoder.weight.copy_(torch.randn(h, d, generator=gen, dtype=dt))
            self.ft_head.weight.copy_(torch.randn(n_ft_out, h, generator=gen, dtype=dt))
        self.weigh = weigh
        self.meta = (TaskWeights(n_tasks) if weigh == "tasks" else ExampleWeights(n)).to(dt)
        with torch.no_grad():
            self.meta.logits.copy_(0.5 * torch.randn(self.meta.logits.shape, generator=gen, dtype=dt))
        self.rho = rho
        self.X = torch.randn(n, d, generator=gen, dtype=dt)
        self.Y = torch.randn(n, n_tasks, generator=gen, dtype=dt)
        self.X_ft = torch.randn(n, d, generator=gen, dtype=dt)
        self.Y_ft = torch.randn(n, n_ft_out, generator=gen, dtype=dt)
        self.X_val = torch.randn(n, d, generator=gen, dtype=dt)
        self.Y_val = torch.randn(n, n_ft_out, generator=gen, dtype=dt)

    def encoder_input(self, batch):
        return batch[0]

    def pt_loss(self, batch):
        x, y = batch
        sq = (self.encoder(x) @ self.pt_head.U - y) ** 2
        weighted = self.meta(sq.mean(0)) if self.weigh == "tasks" else self.meta(sq.mean(1), torch.arange(len(x)))
        return weighted + 0.5 * self.rho * self.encoder.weight.pow(2).sum()

    def ft_loss(self, logits, batch):
        return ((logits - batch[1]) ** 2).mean()

    # closed form -----------------------------------------------------------------------------
    def optimal_encoder(self, logits: torch.Tensor) -> torch.Tensor:
        """E*(λ), differentiable in λ: the weighted normal equations A e = b over e = vec(E)."""
        U, X, Y = self.pt_head.U, self.X, self.Y
        n, T = Y.shape
        w = 2 * torch.sigmoid(logits)
        feats = torch.einsum("at,ib->tiab", U, X).reshape(T, n, -1)  # φ_it = u_t ⊗ x_i
        w_ti = w[:, None].expand(T, n) if self.weigh == "tasks" else w[None, :].expand(T, n)
        scale = (w_ti / (T * n))[:, :, None]  # [T, n, 1]
        A = 2 * ((scale * feats).transpose(1, 2) @ feats).sum(0) + self.rho * torch.eye(feats.shape[-1], dtype=X.dtype)
        b = 2 * torch.einsum("tik,ti->k", scale * feats, Y.T)
        return torch.linalg.solve(A, b).reshape(self.encoder.weight.shape)


class MLPMultitask(BilevelProblem):
    """Multitask MLP with BatchNorm and dropout: exercises modes, RNG and resume."""

    def __init__(self, d=6, h=8, n_tasks=7, n_ft=3, dropout=0.2, dtype=torch.float32, seed=0):
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.BatchNorm1d(h), nn.Tanh(), nn.Dropout(dropout), nn.Linear(h, h), nn.Tanh()).to(dtype)
        self.pt_head = nn.Linear(h, n_tasks).to(dtype)
        self.ft_head = nn.Linear(h, n_ft).to(dtype)
        self.meta = TaskWeights(n_tasks).to(dtype)

    def encoder_input(self, batch):
        return batch[0]

    def pt_loss(self, batch):
        x, y_pt, _ = batch
        per_task = nn.functional.binary_cross_entropy_with_logits(self.pt_head(self.encoder(x)), y_pt, reduction="none").mean(0)
        return self.meta(per_task)

    def ft_loss(self, logits, batch):
        return nn.functional.binary_cross_entropy_with_logits(logits, batch[2])


def multitask_data(n=96, d=6, n_tasks=7, n_ft=3, seed=0, dtype=torch.float32):
    """(x, PT labels, FT labels) triples; FT labels depend on the first two PT-task directions."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=dtype)
    w_pt = torch.randn(d, n_tasks, generator=gen, dtype=dtype)
    y_pt = (x @ w_pt > 0).to(dtype)
    w_ft = w_pt[:, :2] @ torch.randn(2, n_ft, generator=gen, dtype=dtype)
    y_ft = (x @ w_ft > 0).to(dtype)
    return [(x[i], y_pt[i], y_ft[i]) for i in range(n)]


def stack(items):
    return tuple(torch.stack(t) for t in zip(*items))


class AgnosticMLP(MLPMultitask):
    """The downstream-agnostic variant: φ weights the kept PT tasks; the meta-objective is held-out PT tasks."""

    def __init__(self, split, **kw):
        super().__init__(n_tasks=len(split.kept), n_ft=len(split.held_out), **kw)
        self.split = split

    def pt_loss(self, batch):
        x, y_pt, _ = batch
        return super().pt_loss((x, y_pt[:, self.split.kept], None))

    def ft_loss(self, logits, batch):
        return nn.functional.binary_cross_entropy_with_logits(logits, batch[1][:, self.split.held_out])
