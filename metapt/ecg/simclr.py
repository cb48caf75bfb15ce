"""SimCLR's NT-Xent loss and the default ECG augmentations, vectorised over the batch.

Default view (docs/background.md, "ECG SimCLR default view"): per lead, zero a random contiguous segment of up to half the
signal; then add Gaussian noise with std U(0, 0.1) × that lead's std. Randomness comes from the
global torch RNG, so the engine's checkpoints capture it.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalised-temperature cross-entropy over 2N views; the positive of view i is its pair."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = len(z1)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def random_zero_crop(x: torch.Tensor, max_frac: float = 0.5) -> torch.Tensor:
    """x [B, T, L]: zero one random contiguous segment per example and lead (length ≤ max_frac·T)."""
    b, t, leads = x.shape
    length = (torch.rand(b, 1, leads, device=x.device) * max_frac * t).long()
    start = (torch.rand(b, 1, leads, device=x.device) * (t - length + 1)).long()
    pos = torch.arange(t, device=x.device).view(1, t, 1)
    return x.masked_fill((pos >= start) & (pos < start + length), 0.0)


def gaussian_noise(x: torch.Tensor, max_scale: float = 0.1) -> torch.Tensor:
    """Add N(0, σ²) with σ = U(0, max_scale) × the per-example, per-lead std."""
    scale = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) * max_scale
    return x + torch.randn_like(x) * scale * x.std(dim=1, keepdim=True)


def default_view(x: torch.Tensor) -> torch.Tensor:
    return gaussian_noise(random_zero_crop(x))
