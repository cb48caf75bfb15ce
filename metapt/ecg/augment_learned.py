"""Learned ECG augmentation (the paper's ECG meta-parameters): a random smooth, diffeomorphic time warp.

Pipeline for x of shape [B, T, 12] (docs/background.md, "Learned warp augmentation"):

1. A small conv net gives a per-example magnitude m = 2·sigmoid(net(x)) ∈ (0, 2) (m = 1 at logit 0).
2. A global scalar s (init 4) gives the std 100·s² (the paper's parameterisation).
3. Velocity noise z ~ N(0, 1) of length T from the *global* torch RNG (so checkpoints capture it),
   downsampled ×4 by averaging (which halves its std), scaled to v = flow_scale · m · 100·s² · z.

   Units: v is in **samples of the downsampled (coarse) grid**. ``flow_scale`` (default 5e-3) turns
   the paper's large std (1600 at init) into a moderate velocity (≈4·m coarse samples std at init),
   then v ← c·tanh(v / c) with c = ``max_velocity`` (4 coarse samples). The soft cap is our addition:
   a white-noise velocity can otherwise compress regions without bound, so the map collapses to
   float-equal positions at large s; with the cap the compression is bounded (min slope ≳ 3e-3 in
   float32 for any s) and the max displacement ≤ c coarse samples before smoothing. At default
   init and T = 1024 the per-example max displacement is ≈ 10 samples (≈ 1 % of T; max ≈ 15), but
   the local time scaling (map slope) spans ≈ 0.02–3.3: raise ``smooth_sigma`` for gentler warps.
4. Integrated by scaling and squaring: v ← v / 2^N, then N times v ← v + v∘(id + v), composition by
   1-D linear interpolation with the velocity held constant beyond the ends. N = 5 as in the paper,
   raised automatically when the scaled field is steep (first step slope ≥ 1/2), so the map
   id + v is strictly increasing (diffeomorphic) for any magnitude: composition of strictly
   increasing maps is strictly increasing.
5. Upsampled back to T (linear, align_corners=True so the identity is exact) and smoothed with a
   25-tap Gaussian (σ = 4 samples, replicate padding: a positive, normalised kernel keeps the map
   strictly increasing).
6. All 12 leads are resampled with ``grid_sample`` on [B, 12, 1, T], align_corners=True (−1 and +1
   are the first and last sample centres, so a zero flow reproduces x exactly), border padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from metapt.engine.metaparams import MetaParameterisation


def _interp(v: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of v [B, n] at fractional indices pos [B, n]; v is held constant beyond the ends."""
    n = v.shape[-1]
    pos = pos.clamp(0, n - 1)
    i0 = pos.detach().floor().long().clamp(0, n - 2)
    w = pos - i0.to(pos.dtype)
    return v.gather(-1, i0) * (1 - w) + v.gather(-1, i0 + 1) * w


def integrate_velocity(v: torch.Tensor, min_steps: int = 5, max_steps: int = 40) -> torch.Tensor:
    """Scaling and squaring of a stationary 1-D velocity v [B, n] (in grid samples): displacement of exp(v).

    Uses at least ``min_steps`` squarings, more when needed so the first step id + v/2^N has slope ≥ 1/2.
    """
    with torch.no_grad():
        steep = (-(v[:, 1:] - v[:, :-1])).clamp_min(0).max().item() if v.shape[-1] > 1 else 0.0
        n_steps = min_steps if steep <= 0 else max(min_steps, math.ceil(math.log2(2 * steep)) + 1)
        n_steps = min(n_steps, max_steps)
    grid = torch.arange(v.shape[-1], dtype=v.dtype, device=v.device).expand_as(v)
    v = v / 2 ** n_steps
    for _ in range(n_steps):
        v = v + _interp(v, grid + v)
    return v


def gaussian_kernel(taps: int = 25, sigma: float = 4.0, dtype=torch.float32, device=None) -> torch.Tensor:
    t = torch.arange(taps, dtype=dtype, device=device) - (taps - 1) / 2
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


class WarpAugmentation(MetaParameterisation):
    """Learned random smooth time warp of [B, T, leads] ECGs; φ = conv-net weights and the global scale s."""

    def __init__(self, n_leads: int = 12, channels: int = 32, s_init: float = 4.0, flow_scale: float = 5e-3,
                 scalar_lr: float = 1.0, downsample: int = 4, squaring_steps: int = 5,
                 smooth_taps: int = 25, smooth_sigma: float = 4.0, max_velocity: float = 4.0):
        super().__init__()
        layers, c_in = [], n_leads
        for _ in range(4):
            layers += [nn.Conv1d(c_in, channels, 15, stride=2, padding=7, bias=False), nn.BatchNorm1d(channels), nn.ReLU()]
            c_in = channels
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels, 1))
        self.s = nn.Parameter(torch.tensor(float(s_init)))
        self.flow_scale, self.scalar_lr = flow_scale, scalar_lr
        self.downsample, self.squaring_steps = downsample, squaring_steps
        self.smooth_taps, self.smooth_sigma = smooth_taps, smooth_sigma
        self.max_velocity = max_velocity
        self._last_m: torch.Tensor | None = None
        self._last_disp: torch.Tensor | None = None

    def std(self) -> torch.Tensor:
        """Global flow std 100·s² (before ``flow_scale``)."""
        return 100 * self.s ** 2

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example m = 2·sigmoid(net(x)) ∈ (0, 2), shape [B]."""
        return 2 * torch.sigmoid(self.net(x.transpose(1, 2)).squeeze(-1))

    def sample_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Sampling positions φ(i) in fine-grid samples [B, T] (strictly increasing); uses the global RNG."""
        b, t, _ = x.shape
        m = self.magnitude(x)
        z = torch.randn(b, 1, t, dtype=x.dtype, device=x.device)
        n = max(2, math.ceil(t / self.downsample))
        z = F.interpolate(z, size=n, mode="area").squeeze(1)                  # [B, n], std ≈ 1/2
        v = self.flow_scale * (m * self.std()).unsqueeze(-1) * z              # coarse samples
        v = self.max_velocity * torch.tanh(v / self.max_velocity)             # soft cap, see module doc
        u = integrate_velocity(v, self.squaring_steps)
        u = u * ((t - 1) / (n - 1))                                           # to fine samples
        u = F.interpolate(u.unsqueeze(1), size=t, mode="linear", align_corners=True)
        k = gaussian_kernel(self.smooth_taps, self.smooth_sigma, x.dtype, x.device).view(1, 1, -1)
        u = F.conv1d(F.pad(u, (self.smooth_taps // 2,) * 2, mode="replicate"), k).squeeze(1)
        self._last_m, self._last_disp = m.detach(), u.detach()
        return torch.arange(t, dtype=x.dtype, device=x.device) + u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Warped x, same shape [B, T, leads]; differentiable w.r.t. the net and s."""
        b, t, c = x.shape
        pos = self.sample_grid(x)
        gx = 2 * pos / (t - 1) - 1                                            # align_corners=True
        grid = torch.stack([gx, torch.zeros_like(gx)], -1).unsqueeze(1)       # [B, 1, T, 2]
        img = x.transpose(1, 2).unsqueeze(2)                                  # [B, leads, 1, T]
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out.squeeze(2).transpose(1, 2)

    def param_groups(self, lr: float) -> list[dict]:
        """The conv net at ``lr`` (paper: Adam 1e-4) and the global scale s at ``scalar_lr`` (paper: 1)."""
        return [{"params": list(self.net.parameters()), "lr": lr},
                {"params": [self.s], "lr": self.scalar_lr}]

    def summary(self) -> dict[str, float]:
        out = {"warp_std": float(self.std().detach())}
        if self._last_m is not None:
            out.update(m_mean=float(self._last_m.mean()), m_std=float(self._last_m.std(unbiased=False)),
                       max_disp=float(self._last_disp.abs().max()))
        return out

    trajectory_quantity = "warp"
    trajectory_columns = ("warp_std", "m_mean")

    def trajectory_vector(self) -> torch.Tensor:
        m = float(self._last_m.mean()) if self._last_m is not None else float("nan")
        return torch.tensor([float(self.std().detach()), m])
