"""The one interface a domain implements to use the engine.

θ = encoder + PT head, ψ = FT head, φ = ``meta``. The engine calls only these methods;
it never looks inside a batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from metapt.engine.metaparams import MetaParameterisation


class BilevelProblem(ABC):
    """A PT objective L_PT(θ, φ), an FT model on top of the encoder, and the FT loss.

    Subclasses set ``encoder``, ``pt_head``, ``ft_head`` and ``meta`` (all ``nn.Module``)
    and implement :meth:`pt_loss` and :meth:`ft_loss`.
    """

    encoder: nn.Module
    pt_head: nn.Module
    ft_head: nn.Module
    meta: MetaParameterisation

    @abstractmethod
    def pt_loss(self, batch: Any) -> torch.Tensor:
        """Scalar PT loss for a batch, using θ and φ (e.g. task-weighted multitask BCE)."""

    @abstractmethod
    def ft_loss(self, logits: torch.Tensor, batch: Any) -> torch.Tensor:
        """Scalar FT loss of the FT head's logits on a batch (also the meta-objective on MetaFT-val)."""

    def ft_targets(self, batch: Any) -> torch.Tensor:
        """0/1 FT labels [n, tasks] of a batch: what ``hypergrad.ft_objective: converged_head`` fits its logistic head to."""
        raise NotImplementedError(f"{type(self).__name__} defines no ft_targets, which ft_objective 'converged_head' needs")

    def encoder_input(self, batch: Any) -> Any:
        """What the encoder takes from a batch (the whole batch by default, e.g. a PyG ``Batch``)."""
        return batch

    def features(self, batch: Any, encoder_params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Encoder output for a batch; ``encoder_params`` substitutes unrolled weights functionally."""
        inputs = self.encoder_input(batch)
        if encoder_params is None:
            return self.encoder(inputs)
        return functional_call(self.encoder, encoder_params, (inputs,))

    def head_logits(self, head_params: dict[str, torch.Tensor], feats: torch.Tensor) -> torch.Tensor:
        return functional_call(self.ft_head, head_params, (feats,))

    # ---- derived views used by the engine -------------------------------------------------
    def to(self, device) -> "BilevelProblem":
        for m in self.modules().values():
            m.to(device)
        return self

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "pt_head": self.pt_head, "ft_head": self.ft_head, "meta": self.meta}

    def theta(self) -> list[nn.Parameter]:
        """θ: every trainable PT parameter (encoder, then PT head)."""
        return [p for m in (self.encoder, self.pt_head) for p in m.parameters() if p.requires_grad]

    def named_encoder_params(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.encoder.named_parameters() if p.requires_grad}

    def named_head_params(self) -> dict[str, nn.Parameter]:
        return dict(self.ft_head.named_parameters())

    def phi(self) -> list[nn.Parameter]:
        return [p for p in self.meta.parameters() if p.requires_grad]
