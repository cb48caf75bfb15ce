"""ECG settings (ResNet, SimCLR pre-training, fine-tuning), validated; paper values are the defaults."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from metapt.ecg.domain import DOMAIN
from metapt.engine.config import MetaLoopConfig
from metapt.settings import FTConfig, Strict


class ResNetConfig(Strict):
    widths: tuple[int, ...] = (32, 64, 128, 256)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    blocks: int = Field(2, ge=1)
    kernel: int = Field(15, ge=1)
    stem_stride: int = Field(2, ge=1)


class ECGPretrainConfig(Strict):
    batch_size: int = Field(256, ge=2)
    meta_batch_size: int = Field(64, ge=1)
    loop: MetaLoopConfig = MetaLoopConfig(epochs=50, warmup_epochs=1, meta_lr=1e-4)
    warp_scalar_lr: float = Field(1.0, gt=0, description="meta lr of the global warp magnitude (the net uses loop.meta_lr)")
    warp_channels: int = Field(32, ge=1)


class ECGConfig(Strict):
    model: ResNetConfig = ResNetConfig()
    pretrain: ECGPretrainConfig = ECGPretrainConfig()
    finetune: dict[str, FTConfig] = Field(default_factory=lambda: {
        "full": FTConfig(mode="full", lr=1e-3, epochs=200, batch_size=64),
        "linear": FTConfig(mode="linear", lr=1e-3, epochs=200, batch_size=64),
    })
    ft_seeds: tuple[int, ...] = (0, 1, 2)


class ECGData(Strict):
    source: Literal["synthetic", "ptbxl"] = "synthetic"
    n_records: int = Field(1000, ge=20, description="synthetic records")
    generator: dict[str, Any] = Field(default_factory=dict, description="SynthECGConfig overrides")
    seed: int = 0
    version: Literal["1.0.3", "1.0.1"] = "1.0.3"
    url: str | None = Field(None, description="mirror of the PhysioNet zip; null = PhysioNet")
    sha256: str | None = None
    size: int | None = None
    highpass: bool = False
    pad_to: int = Field(1024, ge=1000)


class ECGGrid(Strict):
    methods: list[Literal[DOMAIN.grid_methods(sees_ft_data=False)]] = ["simclr"]  # no_pt is always there: it needs no PT job
    labels: list[Annotated[int, Field(ge=2)]] = Field([10, 25, 50, 100, 250, 500], min_length=1, description="N: labelled examples for MetaFT and FT")
    partial_ft_labels: list[Annotated[int, Field(ge=2)]] = Field([], description="N_FT for partial access: meta-SimCLR that learned from N < N_FT labels is "
                                         "also fine-tuned on N_FT labels (every method is fine-tuned at N_FT, to compare)")

    def ft_labels(self, learned_from: int | None = None) -> list[int]:
        """The FT budgets of a run: every N and N_FT for the baselines; N, then each N_FT > N, for meta-SimCLR at N."""
        if learned_from is None:
            return sorted(set(self.labels) | set(self.partial_ft_labels))
        return [learned_from] + sorted(n for n in set(self.partial_ft_labels) if n > learned_from)


class ECGParams(ECGConfig):
    data: ECGData = ECGData()
    grid: ECGGrid = ECGGrid()

    @model_validator(mode="after")
    def _labels_fit_the_synthetic_pool(self) -> "ECGParams":
        # Checked here, not in the FT job after PT has run. Synthetic folds are dealt round robin
        # (synth._folds), so PT folds 1–9 hold all records but every tenth.
        if self.data.source == "synthetic":
            pool = self.data.n_records - self.data.n_records // 10
            too_big = [n for n in self.grid.ft_labels() if n > pool]
            if too_big:
                raise ValueError(f"grid.labels / grid.partial_ft_labels: {too_big} exceed the {pool} synthetic records in PT folds 1-9 "
                                 f"(data.n_records: {self.data.n_records}); raise data.n_records or lower N")
        return self
