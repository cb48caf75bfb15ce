"""The 1-D ResNet-18 ECG encoder and the SimCLR projection head (docs/background.md, "Architectures").

Input [B, T, 12] (time-major, as the records are stored). Stem Conv1d(12→32, k15, s2) → BN →
ReLU, then 4 stages of 2 basic blocks (k15), widths 32/64/128/256, strides 1/2/2/2, and a global
average pool: a 256-d feature. Widths, blocks and the stem stride are knobs so the embedded
profile can shrink the time axis and depth (the early full-length layers dominate the cost).
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride, pad, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, kernel, 1, pad, bias=False), nn.BatchNorm1d(c_out),
        )
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet1d(nn.Module):
    """Encoder: [B, T, leads] → [B, widths[-1]]."""

    def __init__(self, leads: int = 12, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2, kernel: int = 15, stem_stride: int = 2, strides: tuple[int, ...] = (1, 2, 2, 2)):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError(f"widths {widths} and strides {strides} must have the same length")
        self.stem = nn.Sequential(nn.Conv1d(leads, widths[0], kernel, stem_stride, kernel // 2, bias=False), nn.BatchNorm1d(widths[0]), nn.ReLU(inplace=True))
        layers, c = [], widths[0]
        for w, s in zip(widths, strides):
            for b in range(blocks):
                layers.append(BasicBlock1d(c, w, s if b == 0 else 1, kernel))
                c = w
        self.stages = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x.transpose(1, 2))).mean(dim=2)


class ProjectionHead(nn.Module):
    """SimCLR projection: d → d → ReLU → 128."""

    def __init__(self, d: int = 256, out: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def encoder(profile) -> ResNet1d:
    return resnet(profile.ecg.model)


def resnet(m) -> ResNet1d:
    """A ResNet of a ``ResNetConfig``, freshly initialised (under the caller's seed): the one place it is built."""
    return ResNet1d(widths=m.widths, strides=m.strides, blocks=m.blocks, kernel=m.kernel, stem_stride=m.stem_stride)
