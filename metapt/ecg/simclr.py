"""The default ECG augmentations of SimCLR, vectorised over the batch (the loss: ``metapt.simclr``).

Default view (docs/background.md, "ECG SimCLR default view"): per lead, zero a random contiguous segment of up to half the
signal; then add Gaussian noise with std U(0, 0.1) × that lead's std. Randomness comes from the
global torch RNG, so the engine's checkpoints capture it.
"""

from __future__ import annotations

import torch


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
