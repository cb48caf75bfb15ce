"""The digits encoder: a small CNN that keeps where things are (flatten, not a global pool), since the
position task needs it; one encoder per task, held in one module so a PT run writes one ``encoder.pt``."""

from __future__ import annotations

import torch
from torch import nn


class DigitCNN(nn.Module):
    """[B, 1, S, S] → [B, features]: stride-2 3×3 conv blocks (BN, ReLU), flatten, a linear map, ReLU."""

    def __init__(self, canvas: int = 28, channels: tuple[int, ...] = (16, 32, 32), features: int = 64):
        super().__init__()
        layers, c, side = [], 1, canvas
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c, side = width, (side + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, features), nn.ReLU(inplace=True))
        self.out_dim = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


class ProjectionHead(nn.Module):
    """SimCLR projection: d → d → ReLU → 64."""

    def __init__(self, d: int = 64, out: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def cnn(cfg) -> DigitCNN:
    """A CNN of the digits params (``profile.digits``), freshly initialised under the caller's seed."""
    return DigitCNN(cfg.canvas.size, tuple(cfg.model.channels), cfg.model.features)


def encoder(profile) -> nn.ModuleDict:
    """One CNN per task of the grid, in task order (what FT starts from without PT, and what PT writes)."""
    cfg = profile.digits
    return nn.ModuleDict({task: cnn(cfg) for task in cfg.grid.tasks})
