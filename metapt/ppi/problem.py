"""Multitask PPI pre-training as a bilevel problem: task-weighted BCE over PT tasks, BCE over FT tasks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from metapt.engine import BilevelProblem, MetaParameterisation, TaskWeights
from metapt.ppi.model import GIN


class MultitaskPPI(BilevelProblem):
    """θ = GIN + Linear(2h → T_pt); ψ = Linear(2h → T_ft); φ = per-task weights (by default)."""

    def __init__(self, encoder: GIN, n_pt_tasks: int, n_ft_tasks: int, meta: MetaParameterisation | None = None):
        self.encoder = encoder
        self.pt_head = nn.Linear(encoder.out_dim, n_pt_tasks)
        self.ft_head = nn.Linear(encoder.out_dim, n_ft_tasks)
        self.meta = meta if meta is not None else TaskWeights(n_pt_tasks)

    def pt_loss(self, batch) -> torch.Tensor:
        logits = self.pt_head(self.encoder(batch))
        target = batch.go_target_pretrain.view(logits.shape).to(logits.dtype)
        return self.meta(F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(0))

    def ft_loss(self, logits: torch.Tensor, batch) -> torch.Tensor:
        target = batch.go_target_downstream.view(logits.shape).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target)

    def to(self, device) -> "MultitaskPPI":
        for m in self.modules().values():
            m.to(device)
        return self
