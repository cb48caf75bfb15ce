"""Validated settings shared by both domains; pure pydantic, so params.yaml validates without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FTConfig(Strict):
    """Final fine-tuning: a fresh linear head, the encoder trained too (full) or frozen (linear)."""

    mode: Literal["full", "linear"] = "full"
    lr: float = Field(1e-3, gt=0)
    epochs: int = Field(50, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1, description="None: one pass over the FT train split (a bounded run sets a few)")
    batch_size: int = Field(32, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1, description="dropout of the encoder during FT (PPI: 0.5); None keeps it")
    weight_decay: float = Field(0.0, ge=0)
