"""SimCLR pre-training of a digits encoder as a bilevel problem; φ is the augmentation policy.

Both views go through the policy (fixed for SimCLR and the oracle, learned for meta-SimCLR). The
meta-objective is the BCE of a linear head on the task's MetaFT labels (one-hot for the class task),
the same loss final FT uses. Batches are (images [B, 1, S, S], labels [B, k]).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from metapt.digits.augment import AugmentationPolicy
from metapt.digits.model import DigitCNN, ProjectionHead
from metapt.engine import BilevelProblem
from metapt.simclr import nt_xent


class SimCLRDigits(BilevelProblem):
    def __init__(self, encoder: DigitCNN, policy: AugmentationPolicy, n_out: int, temperature: float = 0.5):
        self.encoder = encoder
        self.pt_head = ProjectionHead(encoder.out_dim)
        self.ft_head = nn.Linear(encoder.out_dim, n_out)
        self.meta = policy
        self.temperature = temperature

    def encoder_input(self, batch):
        return batch[0]

    def pt_loss(self, batch) -> torch.Tensor:
        x = batch[0]
        z1 = self.pt_head(self.encoder(self.meta(x)))
        z2 = self.pt_head(self.encoder(self.meta(x)))
        return nt_xent(z1, z2, self.temperature)

    def ft_loss(self, logits: torch.Tensor, batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, batch[1].to(logits.dtype))
