"""Digits settings (canvas, CNN, policy, SimCLR pre-training, fine-tuning), validated at parse time."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from metapt.digits.domain import DOMAIN, TASKS, TRANSFORMS
from metapt.engine.config import MetaLoopConfig
from metapt.settings import FTConfig, Strict

Task = Literal[TASKS]
Transform = Literal[TRANSFORMS]


class DigitsData(Strict):
    source: Literal["sklearn", "mnist"] = "sklearn"
    seed: int = Field(0, description="seed of the PT-pool / test split and of each task's labels")
    test_fraction: float = Field(0.3, gt=0, lt=1)
    url: str | None = Field(None, description="MNIST mirror (base URL of the four IDX files); null = metapt.digits.idx.MNIST_URL")
    sha256: dict[str, str] | None = Field(None, description="MNIST file name → SHA-256; null = unpinned (the digests are recorded)")


class CanvasConfig(Strict):
    """Where a digit sits: every task's images share one square canvas (docs/digits.md)."""

    size: int = Field(28, ge=8)
    digit: int = Field(12, ge=4, description="side of the digit after resizing")
    separation: int = Field(6, ge=0, description="position task: distance between the left and right digit centres")

    @model_validator(mode="after")
    def _fits(self) -> "CanvasConfig":
        if self.separation + self.digit > self.size:
            raise ValueError(f"canvas.size {self.size} is too small for two digit positions ({self.digit} px digits, {self.separation} px apart)")
        return self


class CNNConfig(Strict):
    channels: tuple[int, ...] = (16, 32, 32)
    features: int = Field(64, ge=2)


class PolicyConfig(Strict):
    """Magnitudes of the augmentation policy: rotation in degrees, translation in pixels, scale as a log factor,
    shear as a slope, noise as a std (images are in [0, 1]). ``start``: the fixed SimCLR policy and meta-SimCLR's
    initial one; ``oracle``: per task, the magnitudes the hand-chosen right policy changes (fixed a priori from
    how the task is built)."""

    start: dict[Transform, Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: {
        "rotation": 120.0, "translation": 8.0, "scale": 0.2, "shear": 0.2, "noise": 0.1})
    oracle: dict[Task, dict[Transform, Annotated[float, Field(ge=0)]]] = Field(default_factory=lambda: {
        "class": {"rotation": 15.0}, "orientation": {"rotation": 0.0}, "position": {"rotation": 0.0, "translation": 0.0}})

    @model_validator(mode="after")
    def _every_transform_starts(self) -> "PolicyConfig":
        missing = [t for t in TRANSFORMS if t not in self.start]
        if missing:
            raise ValueError(f"policy.start: missing {missing}; every transform needs a start magnitude ({', '.join(TRANSFORMS)})")
        return self

    def magnitudes(self, task: str, method: str) -> dict[str, float]:
        """The policy a method pre-trains a task with (meta-SimCLR: where it starts)."""
        return {**self.start, **(self.oracle.get(task, {}) if method == "oracle" else {})}


class DigitsPretrainConfig(Strict):
    batch_size: int = Field(128, ge=2)
    meta_batch_size: int = Field(64, ge=1)
    temperature: float = Field(0.5, gt=0)
    loop: MetaLoopConfig = MetaLoopConfig(epochs=30, warmup_epochs=2, hyper_every=5, pt_lr=1e-3, meta_lr=0.05)


class DigitsGrid(Strict):
    methods: list[Literal[DOMAIN.grid_methods(sees_ft_data=False)]] = ["simclr", "oracle"]  # no_pt is always there
    tasks: list[Task] = Field(list(TASKS), min_length=1)
    labels: list[Annotated[int, Field(ge=5)]] = Field([20, 50, 200], min_length=1, description="N: labelled examples of a task for final FT")
    meta_labels: list[Annotated[int, Field(ge=5)]] = Field([50, 200], description="the N that meta-SimCLR learns its policy from (each also in labels)")

    @model_validator(mode="after")
    def _meta_budgets_are_ft_budgets(self) -> "DigitsGrid":
        extra = sorted(set(self.meta_labels) - set(self.labels))
        if extra:
            raise ValueError(f"grid.meta_labels: {extra} not in grid.labels {self.labels}; meta-SimCLR is fine-tuned at the N it learned from")
        return self


class DigitsParams(Strict):
    data: DigitsData = DigitsData()
    canvas: CanvasConfig = CanvasConfig()
    model: CNNConfig = CNNConfig()
    policy: PolicyConfig = PolicyConfig()
    pretrain: DigitsPretrainConfig = DigitsPretrainConfig()
    finetune: dict[str, FTConfig] = Field(default_factory=lambda: {
        "linear": FTConfig(mode="linear", lr=1e-2, epochs=100, batch_size=64),
        "full": FTConfig(mode="full", lr=1e-3, epochs=30, batch_size=32),
    })
    ft_seeds: tuple[int, ...] = (0,)
    grid: DigitsGrid = DigitsGrid()

    @model_validator(mode="after")
    def _labels_fit_the_smallest_pool(self) -> "DigitsParams":
        # Checked here, not after PT: the orientation task keeps 5 of the 10 classes (metapt.digits.data),
        # so its PT pool is about half of the others'. 1,797 digits in scikit-learn's set.
        if self.data.source == "sklearn":
            pool = int(1797 * (1 - self.data.test_fraction) * 0.45)
            too_big = [n for n in self.grid.labels if n > pool]
            if too_big:
                raise ValueError(f"grid.labels: {too_big} exceed the ≈{pool} examples in the orientation task's PT pool "
                                 f"(data.test_fraction: {self.data.test_fraction}); lower N")
        return self
