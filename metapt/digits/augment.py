"""The learned augmentation policy of the digits domain (φ): a random affine map and additive noise,
each transform with a global magnitude.

For x [B, 1, H, W], each example draws u ~ U(−1, 1)⁵ and ε ~ N(0, 1) from the global torch RNG (so
the engine's checkpoints capture them) and is resampled through ``affine_grid`` / ``grid_sample``
(bilinear, zero padding = the background, ``align_corners=False`` so the identity map is exact):

    angle = m_rotation·u₁ (degrees), shift = m_translation·(u₂, u₃) (pixels),
    scale = exp(m_scale·u₄), shear = m_shear·u₅, then x ← x + m_noise·ε.

The magnitudes are m = m₀·exp(ρ) with ρ = 0 at the start: φ = ρ (five numbers). Multiplicative so a
magnitude stays positive and one step moves every transform by the same relative amount; a magnitude
that starts at 0 (an oracle's switched-off transform) stays 0 and is not learned. Everything is a
reparameterised function of ρ, so the hypergradient reaches it through ``grid_sample``'s grid.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from metapt.digits.domain import TRANSFORMS
from metapt.engine.metaparams import MetaParameterisation


class AugmentationPolicy(MetaParameterisation):
    """A random affine + noise augmentation with magnitudes m = m₀·exp(ρ); ρ is φ (learned only when the loop's meta-learning is on)."""

    trajectory_quantity = "magnitudes"
    trajectory_columns = TRANSFORMS

    def __init__(self, start: Mapping[str, float]):
        super().__init__()
        self.register_buffer("start", torch.tensor([float(start[t]) for t in TRANSFORMS]))
        self.log_ratio = nn.Parameter(torch.zeros(len(TRANSFORMS)))

    def magnitudes(self) -> torch.Tensor:
        return self.start * self.log_ratio.exp()

    def affine(self, u: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """[B, 2, 3] maps (output → input, normalised coordinates) for uniforms u [B, 5]."""
        m = self.magnitudes().to(u.dtype)
        angle = torch.deg2rad(m[0] * u[:, 0])
        h, w = size
        tx, ty = m[1] * u[:, 1] * 2 / w, m[1] * u[:, 2] * 2 / h  # pixels → normalised units
        scale = torch.exp(m[2] * u[:, 3])
        shear = m[3] * u[:, 4]
        cos, sin = torch.cos(angle), torch.sin(angle)
        # rotation · shear · scale, then the shift
        a = torch.stack([cos, cos * shear - sin, sin, sin * shear + cos], -1).view(-1, 2, 2) * scale.view(-1, 1, 1)
        return torch.cat([a, torch.stack([tx, ty], -1).unsqueeze(-1)], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        u = torch.rand(b, 5, dtype=x.dtype, device=x.device) * 2 - 1
        eps = torch.randn_like(x)
        theta = self.affine(u, x.shape[-2:])
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out + self.magnitudes()[4].to(x.dtype) * eps

    def summary(self) -> dict[str, float]:
        return {f"m_{t}": float(v) for t, v in zip(TRANSFORMS, self.magnitudes().detach())}

    def trajectory_vector(self) -> torch.Tensor:
        return self.magnitudes().detach().cpu()


def rotate_180(x: torch.Tensor) -> torch.Tensor:
    """The exact 180° turn (a check of the affine convention: angle 180° must equal it)."""
    return torch.flip(x, dims=(-2, -1))


DEGREES_PER_RADIAN = 180 / math.pi
