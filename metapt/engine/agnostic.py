"""The downstream-agnostic meta-objective (Luo et al. 2021).

No downstream labels are used: a slice of the PT tasks is held out of pre-training, and the
meta-objective is the loss of an FT head that predicts those held-out tasks. The engine runs
unchanged; a domain builds its ``BilevelProblem`` with ``split.kept`` in the PT loss and
``split.held_out`` as the FT targets, and draws its MetaFT batches from PT data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TaskSplit:
    kept: torch.Tensor  # PT task indices that pre-training uses (and φ weights)
    held_out: torch.Tensor  # PT task indices that form the meta-objective

    @classmethod
    def random(cls, n_tasks: int, held_out_frac: float, seed: int) -> "TaskSplit":
        if not 0 < held_out_frac < 1:
            raise ValueError(f"held_out_frac must be in (0, 1), got {held_out_frac}")
        n_held = max(1, round(held_out_frac * n_tasks))
        if n_held >= n_tasks:
            raise ValueError(f"held_out_frac={held_out_frac} leaves no PT task out of {n_tasks}")
        perm = torch.randperm(n_tasks, generator=torch.Generator().manual_seed(seed))
        return cls(kept=perm[n_held:].sort().values, held_out=perm[:n_held].sort().values)
