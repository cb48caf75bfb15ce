"""ECG settings (ResNet, SimCLR pre-training, fine-tuning), validated; paper values are the defaults."""

from __future__ import annotations

from pydantic import Field

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
