"""PPI settings (model, pre-training, fine-tuning), validated; paper values are the defaults.

Pure pydantic: ``params.yaml`` is checked without importing torch_geometric.
"""

from __future__ import annotations

from pydantic import Field

from metapt.engine.config import MetaLoopConfig
from metapt.settings import FTConfig, Strict


class GINConfig(Strict):
    layers: int = Field(5, ge=1)
    hidden: int = Field(300, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    offset_center_in_pt: bool = Field(True, description="False reproduces the authors' un-offset centre index during PT")


class PPIPretrainConfig(Strict):
    batch_size: int = Field(32, ge=1)
    meta_batch_size: int = Field(32, ge=1, description="MetaFT-train and MetaFT-val batch size")
    loop: MetaLoopConfig = MetaLoopConfig()
    agnostic_held_out_frac: float = Field(0.1, gt=0, lt=1, description="PT tasks held out as the agnostic meta-objective")


class PPIConfig(Strict):
    model: GINConfig = GINConfig()
    pretrain: PPIPretrainConfig = PPIPretrainConfig()
    finetune: dict[str, FTConfig] = Field(default_factory=lambda: {
        "full": FTConfig(mode="full", lr=1e-5, epochs=50, dropout=0.5),
        "linear": FTConfig(mode="linear", lr=1e-4, epochs=50),
    })
    ft_seeds: tuple[int, ...] = (0, 1, 2)
    ft_budget: tuple[int, int] | None = Field(None, description="subsample FT train/val to (n_train, n_val) graphs: the few-label regime of the synthetic benchmark; None = the paper's splits")
