"""Multitask PPI pre-training as a bilevel problem: task-weighted BCE over PT tasks, BCE as the meta-objective.

The meta-objective is the FT tasks (downstream-aware; optionally a subset, for the held-out
task folds) or held-out PT tasks (downstream-agnostic, Luo et al. 2021).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from metapt.engine import BilevelProblem, MetaParameterisation, TaskWeights
from metapt.ppi.model import GIN


class MultitaskPPI(BilevelProblem):
    """θ = GIN + Linear(2h → |pt_columns|); ψ = Linear(2h → |meta_columns|); φ = ``meta`` (task weights by default)."""

    def __init__(
        self,
        encoder: GIN,
        pt_columns: torch.Tensor,
        meta_columns: torch.Tensor,
        meta_target: Literal["downstream", "pretrain"] = "downstream",
        meta: MetaParameterisation | None = None,
    ):
        self.encoder = encoder
        self.pt_columns = torch.as_tensor(pt_columns, dtype=torch.long)
        self.meta_columns = torch.as_tensor(meta_columns, dtype=torch.long)
        self.meta_target = meta_target
        self.pt_head = nn.Linear(encoder.out_dim, len(self.pt_columns))
        self.ft_head = nn.Linear(encoder.out_dim, len(self.meta_columns))
        self.meta = meta if meta is not None else TaskWeights(len(self.pt_columns))

    @classmethod
    def full(cls, encoder: GIN, n_pt_tasks: int, n_ft_tasks: int, meta: MetaParameterisation | None = None) -> "MultitaskPPI":
        return cls(encoder, torch.arange(n_pt_tasks), torch.arange(n_ft_tasks), meta=meta)

    def per_task_pt_loss(self, batch) -> torch.Tensor:
        """[|pt_columns|] BCE summed over the batch's graphs: the per-task losses the weights multiply (and the probe differentiates)."""
        logits = self.pt_head(self.encoder(batch))
        target = batch.go_target_pretrain.view(len(logits), -1)[:, self.pt_columns.to(logits.device)].to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(0)

    def pt_loss(self, batch) -> torch.Tensor:
        return self.meta(self.per_task_pt_loss(batch) / batch.num_graphs)

    def meta_labels(self, batch) -> torch.Tensor:
        source = batch.go_target_downstream if self.meta_target == "downstream" else batch.go_target_pretrain
        return source.view(batch.num_graphs, -1)[:, self.meta_columns.to(source.device)]

    def ft_targets(self, batch) -> torch.Tensor:
        return self.meta_labels(batch)

    def ft_loss(self, logits: torch.Tensor, batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, self.meta_labels(batch).to(logits.dtype))
