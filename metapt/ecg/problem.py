"""SimCLR pre-training of the ECG encoder as a bilevel problem; φ is a learned augmentation.

Each PT view is the default augmentation followed by ``meta`` (the learned warp); with
``use_meta_augmentation=False`` the views use the fixed defaults only, which is the paper's
SimCLR baseline on the same code path. The meta-objective is the multi-label BCE of a linear
head over the 5 superclasses on MetaFT data. Batches are (signals [B, T, 12], labels [B, 5]).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from metapt.ecg.model import ProjectionHead, ResNet1d
from metapt.ecg.simclr import default_view
from metapt.engine import BilevelProblem, MetaParameterisation
from metapt.simclr import nt_xent


class SimCLRECG(BilevelProblem):
    def __init__(self, encoder: ResNet1d, meta: MetaParameterisation, n_classes: int = 5, temperature: float = 0.5, use_meta_augmentation: bool = True):
        self.encoder = encoder
        self.pt_head = ProjectionHead(encoder.out_dim)
        self.ft_head = nn.Linear(encoder.out_dim, n_classes)
        self.meta = meta
        self.temperature = temperature
        self.use_meta_augmentation = use_meta_augmentation

    def encoder_input(self, batch):
        return batch[0]

    def view(self, x: torch.Tensor) -> torch.Tensor:
        x = default_view(x)
        return self.meta(x) if self.use_meta_augmentation else x

    def pt_loss(self, batch) -> torch.Tensor:
        x = batch[0]
        z1 = self.pt_head(self.encoder(self.view(x)))
        z2 = self.pt_head(self.encoder(self.view(x)))
        return nt_xent(z1, z2, self.temperature)

    def ft_loss(self, logits: torch.Tensor, batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, batch[1].to(logits.dtype))
