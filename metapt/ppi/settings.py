"""PPI settings (model, pre-training, fine-tuning), validated; paper values are the defaults.

Pure pydantic: ``params.yaml`` is checked without importing torch_geometric.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from metapt.engine.config import MetaLoopConfig
from metapt.ppi.domain import DOMAIN, budget_column
from metapt.settings import FTConfig, Strict


class GINConfig(Strict):
    layers: int = Field(5, ge=1)
    hidden: int = Field(300, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    offset_center_in_pt: bool = Field(True, description="False reproduces the authors' un-offset centre index during PT")


class ProbeConfig(Strict):
    """The signal ceiling during uniform PT (``metapt.ppi.probe``): which epochs, how many MetaFT resamples."""

    epochs: list[int] = Field(default_factory=list, description="probe at the end of these PT epochs (1-based); [] = off")
    bootstrap: int = Field(0, ge=0, description="resamples of MetaFT for the ranking's stability (0 = none; else ≥ 2)")
    batch_size: int = Field(256, ge=1, description="PT graphs per double backward")

    @model_validator(mode="after")
    def _resamples(self) -> "ProbeConfig":
        if self.bootstrap == 1:
            raise ValueError("bootstrap: a rank correlation needs at least 2 resamples (or 0 for none)")
        if any(e < 1 for e in self.epochs):
            raise ValueError(f"epochs are 1-based (the end of epoch e), got {self.epochs}")
        return self


class SelectionConfig(Strict):
    """Learn, then re-PT (``task_selection``): which PT tasks the second PT keeps, from a meta run's learned weights."""

    rule: Literal["top_k", "sampled"] = Field(
        "top_k", description="top_k: PT with weight 1 on the top_frac tasks by learned weight, 0 elsewhere; sampled: each step keeps "
        "task t with probability w_t / 2 (Luo et al. 2021's per-episode selection, metapt.engine.SampledTasks)")
    top_frac: float = Field(0.2, gt=0, le=1, description="share of the PT tasks top_k keeps (the de-risk study's 20 %; docs/ppi_signal.md)")


class PPIPretrainConfig(Strict):
    batch_size: int = Field(32, ge=1)
    meta_batch_size: int = Field(32, ge=1, description="MetaFT-train and MetaFT-val batch size")
    loop: MetaLoopConfig = MetaLoopConfig()
    agnostic_held_out_frac: float = Field(0.1, gt=0, lt=1, description="PT tasks held out as the agnostic meta-objective")
    weights: Literal["sigmoid", "simplex"] = Field(
        "sigmoid", description="learned task weights: sigmoid = 2·sigmoid(λ) per task with the loop's Adam (the paper's); "
        "simplex = T·p on the probability simplex with exponentiated gradient at loop.meta_lr (metapt.engine.SimplexTaskWeights)")
    probe: ProbeConfig = ProbeConfig()
    selection: SelectionConfig = SelectionConfig()


class PPIConfig(Strict):
    model: GINConfig = GINConfig()
    pretrain: PPIPretrainConfig = PPIPretrainConfig()
    finetune: dict[str, FTConfig] = Field(default_factory=lambda: {
        "full": FTConfig(mode="full", lr=1e-5, epochs=50, dropout=0.5),
        "linear": FTConfig(mode="linear", lr=1e-4, epochs=50),
    })
    ft_seeds: tuple[int, ...] = (0, 1, 2)
    ft_budget: tuple[int, int] | None = Field(None, description="subsample FT train/val to (n_train, n_val) graphs: the few-label regime of the synthetic benchmark; None = the paper's splits")


class PPIData(Strict):
    """Where the PPI graphs come from: the planted-structure generator, or Hu et al.'s bio archive."""

    source: Literal["synthetic", "bio"] = "synthetic"
    preset: Literal["discriminating", "weight_recovery", "conjunction"] = "discriminating"
    generator: dict[str, Any] = Field(default_factory=dict, description="SynthPPIConfig overrides, e.g. n_graphs")
    seed: int = 0
    url: str = "https://snap.stanford.edu/gnn-pretrain/data/bio_dataset.zip"
    sha256: str | None = Field(None, description="pinned archive checksum; null = trust on first use")
    size: int | None = None


class PPIGrid(Strict):
    """Which PT runs exist. Baselines are access-free; ``access_methods`` also run per extra setting."""

    methods: list[Literal[DOMAIN.grid_methods(sees_ft_data=False)]] = ["uniform"]  # no_pt is always there: it needs no PT job
    access_methods: list[Literal[DOMAIN.grid_methods(sees_ft_data=True)]] = ["cotrain", "cotrain_pcgrad", "meta"]
    settings: list[Literal["partial", "heldout"]] = ["partial", "heldout"]
    heldout_fold: int = Field(0, ge=0, lt=4)
    budgets: list[Annotated[int, Field(ge=2)]] = Field(
        [], description="the MetaFT label-budget axis beside ft_budget: FT-train graphs per column N=<n> (FT val: a fifth of that, "
        "never fewer than ft_budget's); budget_methods meta-train at each, every access-free run is fine-tuned at each (docs/ppi_signal.md)")
    budget_methods: list[Literal[DOMAIN.grid_methods(sees_ft_data=True)]] = ["meta"]
    selection_seeds: list[int] = Field(
        [], description="PT seeds of learn-then-re-PT (task_selection) at ft_budget and at every budget: each reads the meta run of "
        "its seed, so each must be a seed of that run; [] = off")

    @model_validator(mode="after")
    def _distinct_budgets(self) -> "PPIGrid":
        if len(set(self.budgets)) != len(self.budgets):
            raise ValueError(f"budgets: each names a column N=<n> and must differ, got {self.budgets}")
        return self


class PPIParams(PPIConfig):
    data: PPIData = PPIData()
    grid: PPIGrid = PPIGrid()

    @model_validator(mode="after")
    def _oracle_needs_truth(self) -> "PPIParams":
        if "oracle" in self.grid.methods and self.data.source != "synthetic":
            raise ValueError("grid.methods: 'oracle' needs planted ground truth, i.e. data.source: synthetic")
        return self

    def budgets(self) -> dict[str, tuple[int, int] | None]:
        """Column → MetaFT (train, val) graphs: ``full`` is ``ft_budget`` (None: the paper's splits), then ``N=<n>`` per
        extra budget, whose val is a fifth of n (the ratio 2,000 / 400), never fewer than ft_budget's val."""
        floor = self.ft_budget[1] if self.ft_budget is not None else 1
        return {"full": self.ft_budget, **{budget_column(n): (n, max(n // 5, floor)) for n in self.grid.budgets}}

    def budget(self, labels: int | None) -> tuple[int, int] | None:
        """The MetaFT (train, val) graphs of a run meta-trained at ``labels`` (``Run.labels``; None: ``ft_budget``)."""
        return self.budgets()["full" if labels is None else budget_column(labels)]
