"""Engine options, validated. Defaults are the paper's (docs/background.md, "Method defaults").

Unknown keys and ill-typed values are rejected with an error that names the key
and, for choices, the allowed values (pydantic ``Literal`` and ``extra='forbid'``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HypergradConfig(_Strict):
    """How one hyper-step estimates dL_val/dφ = −gᵀ (H + δI)⁻¹ M."""

    ft_objective: Literal["unrolled", "converged_head"] = Field(
        "unrolled", description="g = dL_val/dθ through K unrolled steps of the online head (paper), or through the L2-logistic head "
        "fitted to convergence on the K MetaFT-train batches, by the implicit function theorem (metapt.engine.alignment; the "
        "problem must define ft_targets)")
    converged_head_l2: float | None = Field(None, gt=0, description="the converged head's L2 strength; None: chosen each hyper-step "
                                            "on the MetaFT-val batch (alignment.choose_lambda's grid)")
    ft_steps: int = Field(1, ge=1, description="K: differentiable FT steps unrolled before L_val")
    unroll: Literal["head", "encoder"] = Field("head", description="unroll the FT head only (paper) or the whole encoder too")
    encoder_ft_lr: float | None = Field(None, gt=0, description="inner lr for the encoder when unroll=encoder (None: the head lr)")
    unroll_encoder_mode: Literal["eval", "train"] = Field("eval", description="encoder mode in the FT unroll (authors: eval)")
    inverse: Literal["neumann", "exact"] = Field("neumann", description="exact = dense solve, for tiny θ only (tests, diagnostics)")
    neumann_terms: int = Field(1, ge=0, description="P: Hessian-vector products in the truncated Neumann series")
    alpha_mode: Literal["pt_lr", "fixed", "power"] = Field("pt_lr", description="α = current PT lr (paper), a fixed value, or scale/λmax")
    alpha: float = Field(1e-4, gt=0, description="α when alpha_mode=fixed")
    alpha_power_scale: float = Field(0.5, gt=0, lt=2, description="α·λmax when alpha_mode=power")
    power_iterations: int = Field(20, ge=1, description="power-iteration steps for λmax")
    power_refresh: int = Field(50, ge=1, description="re-estimate λmax every this many hyper-steps")
    damping: float = Field(0.0, ge=0, description="δ in (H + δI): tames the indefinite PT Hessian")
    neumann_skip_tol: float | None = Field(
        None, gt=0, lt=1, description="skip the P Hessian-vector products when the bound on their relative effect on v "
        "(metapt.engine.hypergrad.neumann_skip_bound, with λmax by power iteration every power_refresh hyper-steps) is at most this; "
        "None: always run them (paper)")
    pt_batches: int = Field(1, ge=1, description="PT batches averaged for the Hessian and the mixed term")
    bn_mode: Literal["train", "eval"] = Field("train", description="BatchNorm mode for the PT graph (paper: train)")
    restore_bn: bool = Field(False, description="restore BN running stats after the hyper-step (undo the side effect)")
    dropout: Literal["on", "off"] = Field("on", description="dropout in the PT graph (paper: on; one mask for all HVPs)")
    normalise: Literal["paper", "rms", "centred"] = Field(
        "paper", description="paper: raw hypergradient; rms: divided by its RMS; centred: mean removed per φ tensor, then rms"
    )

    @property
    def skips_neumann(self) -> bool:
        """The Neumann HVPs may be skipped (``neumann_skip_tol`` set): each hyper-step bounds their effect."""
        return self.inverse == "neumann" and self.neumann_skip_tol is not None

    @property
    def needs_lambda_max(self) -> bool:
        """A hyper-step needs ‖H‖ (power iteration): for α = scale/λmax, or for the skip bound."""
        return self.alpha_mode == "power" or self.skips_neumann


class MetaLoopConfig(_Strict):
    """Algorithm 1: PT with online FT head and periodic hyper-steps."""

    epochs: int = Field(100, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1, description="None: one pass over the PT stream")
    warmup_epochs: int = Field(1, ge=0, description="no hyper-steps before this; ≥ epochs gives the baseline")
    hyper_every: int = Field(10, ge=1, description="a hyper-step every this many PT steps (global counter)")
    pt_lr: float = Field(1e-4, gt=0)
    pt_weight_decay: float = Field(0.0, ge=0)
    ft_head_optimizer: Literal["adam", "sgd"] = "adam"
    ft_head_lr: float = Field(1e-4, gt=0)
    online_head: Literal["every_step", "at_hyper_steps"] = Field(
        "every_step",
        description="every_step: one FT-head step per PT step on a fresh MetaFT batch (paper); at_hyper_steps: after the warm-up, "
        "the head steps between two hyper-steps are taken at the hyper-step, on detached features of its own MetaFT batch "
        "(as many head steps, no extra encoder forwards)",
    )
    hyper_head_steps: int = Field(0, ge=0, description="extra online FT-head steps right before each hyper-step (a converged head)")
    meta_lr: float = Field(1.0, gt=0)
    meta_eps: float = Field(1e-8, gt=0)
    reuse_pt_graph: bool = Field(False, description="on hyper-steps, build the PT step's graph with create_graph and reuse it")
    checkpoint_every: int = Field(100, ge=0, description="PT steps between checkpoints (0: only at the end)")
    snapshot_every: int = Field(10, ge=1, description="store the full φ vector every this many steps")
    seed: int = 0
    hypergrad: HypergradConfig = HypergradConfig()


    @property
    def meta_enabled(self) -> bool:
        return self.warmup_epochs < self.epochs
