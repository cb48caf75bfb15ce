"""Algorithm 1: meta-parameterised pre-training.

Every PT step updates θ with Adam on L_PT(θ, φ). The FT head ψ is trained online, one
step per PT step on detached features (or, with ``online_head: at_hyper_steps``, the same
number of steps taken inside each hyper-step); with meta off it is never used, so it is
not trained. Every ``hyper_every`` PT steps after the warm-up,
the FT-head step is replaced by a hyper-step: K differentiable head steps (written back
into ψ), the IFT hypergradient, and an Adam step on φ. With ``warmup_epochs ≥ epochs``
no hyper-step ever runs: that is the baseline, on the same code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from metapt import faults
from metapt.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from metapt.engine.config import MetaLoopConfig
from metapt.engine.functional_optim import FunctionalOptimizer, OptState
from metapt.engine.hypergrad import PTGraph, head_step, hypergradient
from metapt.engine.problem import BilevelProblem
from metapt.engine.streams import BatchStream
from metapt.records import PhiTrajectory


class NonFiniteError(FloatingPointError):
    """A loss or hypergradient became NaN/Inf. The last good checkpoint is left in place."""


@dataclass
class StepRecord:
    """What one PT step reports to hooks (the tracking layer logs these)."""

    step: int  # 1-based global PT step
    epoch: int
    pt_loss: float
    ft_loss: float | None = None
    hyper: bool = False
    val_loss: float | None = None
    hypergrad_norm: float | None = None
    alpha: float | None = None
    neumann_growth: float | None = None
    neumann_bound: float | None = None  # with neumann_skip_tol: the bound on the HVPs' relative effect on v
    hvps_skipped: float | None = None  # 1.0 when that bound let the hyper-step skip them
    meta_summary: dict[str, float] = field(default_factory=dict)
    phi: torch.Tensor | None = None  # the full φ vector, on snapshot steps only

    def scalars(self) -> dict[str, float]:
        out = {k: v for k, v in vars(self).items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}
        out["hyper"] = float(self.hyper)
        out.update(self.meta_summary)
        return out


Hook = Callable[[StepRecord], None]


@runtime_checkable
class JournaledHook(Protocol):
    """A hook that keeps what it saw (metric rows, per-epoch evaluations).

    Its state goes into every checkpoint, in the same atomic write as the weights, and comes back on
    resume: a killed run's logs then equal the uninterrupted run's, since the steps after the
    checkpoint run again and are logged again. The state is what the hook saw, or, for a hook that
    appends to a file of its own (``metapt.tracking.StepMetrics``), the file's length: the checkpoint
    commits that much of it. It must load with ``weights_only=True`` (numbers, strings, lists, dicts, tensors).
    """

    def __call__(self, record: StepRecord) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_finite(step: int, what: str, values: Iterable[torch.Tensor]) -> None:
    for v in values:
        if not torch.isfinite(v).all():
            raise NonFiniteError(f"non-finite {what} at PT step {step}; the last good checkpoint is kept")


class MetaPretrainer:
    """Runs Algorithm 1 over resumable batch streams, with checkpoints and per-step hooks."""

    CHECKPOINT = "last.pt"

    def __init__(
        self,
        problem: BilevelProblem,
        pt_stream: BatchStream,
        ft_train_stream: BatchStream,
        ft_val_stream: BatchStream,
        cfg: MetaLoopConfig,
        checkpoint_dir: str | Path | None = None,
        hooks: Iterable[Hook] = (),
        progress: bool = True,
        prepare: Callable[[Any], Any] = lambda b: b,
    ):
        self.problem, self.cfg = problem, cfg
        self.pt_stream, self.ft_train_stream, self.ft_val_stream = pt_stream, ft_train_stream, ft_val_stream
        # fresh PT batches for the Hessian/mixed term, drawn independently of the PT step's batches
        self.hyper_pt_stream = BatchStream(pt_stream.dataset, pt_stream.batch_size, pt_stream.seed + 7919, pt_stream.collate)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.hooks, self.progress, self.prepare = list(hooks), progress, prepare
        self.steps_per_epoch = cfg.steps_per_epoch or pt_stream.batches_per_epoch
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.pt_opt = torch.optim.Adam(problem.theta(), lr=cfg.pt_lr, weight_decay=cfg.pt_weight_decay)
        self.meta_opt = problem.meta.make_optimizer(cfg.meta_lr, cfg.meta_eps)
        self.head_opt = FunctionalOptimizer(cfg.ft_head_optimizer, cfg.ft_head_lr)
        self.head_state = self.head_opt.init_state(list(problem.named_head_params().values()))
        self.step = 0
        self.hyper_steps = 0
        self.lambda_max: float | None = None
        self.trajectory_steps: list[int] = []
        self.trajectory: list[torch.Tensor] = []

    # ---- checkpointing ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / self.CHECKPOINT if self.checkpoint_dir else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "hyper_steps": self.hyper_steps,
            "lambda_max": -1.0 if self.lambda_max is None else self.lambda_max,
            "modules": {k: m.state_dict() for k, m in self.problem.modules().items()},
            "pt_opt": self.pt_opt.state_dict(),
            "meta_opt": self.meta_opt.state_dict(),
            "head_state": self.head_state.state_dict(),
            "streams": {"ft_train": self.ft_train_stream.position, "ft_val": self.ft_val_stream.position, "hyper_pt": self.hyper_pt_stream.position},
            "rng": rng_state(),
            "trajectory_steps": list(self.trajectory_steps),
            "trajectory": list(self.trajectory),
            "journal": [h.state_dict() for h in self.journaled_hooks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.hyper_steps = int(state["step"]), int(state["hyper_steps"])
        self.lambda_max = None if state["lambda_max"] < 0 else float(state["lambda_max"])
        for k, m in self.problem.modules().items():
            m.load_state_dict(state["modules"][k])
        self.pt_opt.load_state_dict(state["pt_opt"])
        self.meta_opt.load_state_dict(state["meta_opt"])
        device = next(iter(self.problem.named_head_params().values())).device
        hs = OptState.from_state_dict(state["head_state"])
        self.head_state = OptState(hs.step, [t.to(device) for t in hs.exp_avg], [t.to(device) for t in hs.exp_avg_sq])
        self.ft_train_stream.position = state["streams"]["ft_train"]
        self.ft_val_stream.position = state["streams"]["ft_val"]
        self.hyper_pt_stream.position = state["streams"]["hyper_pt"]
        set_rng_state(state["rng"])
        self.trajectory_steps = list(state["trajectory_steps"])
        self.trajectory = list(state["trajectory"])
        journal, hooks = state.get("journal", []), self.journaled_hooks
        if len(journal) != len(hooks):
            raise ValueError(f"the checkpoint journals {len(journal)} hook(s) but this run has {len(hooks)}: not the same run")
        for hook, hook_state in zip(hooks, journal):
            hook.load_state_dict(hook_state)

    @property
    def journaled_hooks(self) -> list[JournaledHook]:
        return [h for h in self.hooks if isinstance(h, JournaledHook)]

    def save(self) -> None:
        if self.checkpoint_path is not None:
            save_checkpoint(self.checkpoint_path, self.state_dict())
            faults.reach("checkpoint.saved")

    def resume(self) -> bool:
        """Load the last checkpoint if there is one; returns whether it did."""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_state_dict(load_checkpoint(self.checkpoint_path))
            return True
        return False

    def phi_trajectory(self) -> PhiTrajectory:
        """The full φ trajectory, named by what the meta-parameterisation stores (``trajectory_quantity``)."""
        meta = self.problem.meta
        values = torch.stack(self.trajectory).numpy() if self.trajectory else np.zeros((0, 0), dtype=np.float32)
        return PhiTrajectory(np.asarray(self.trajectory_steps, dtype=np.int64), values, meta.trajectory_quantity, tuple(meta.trajectory_columns))

    def save_trajectory(self, path: str | Path) -> None:
        """The φ trajectory as a compressed npz (``metapt.records.PhiTrajectory``, its one writer)."""
        self.phi_trajectory().write(path)

    # ---- the loop --------------------------------------------------------------------------
    def is_hyper_step(self, step: int) -> bool:
        """``step`` is 1-based; the global counter never resets between epochs."""
        epoch = (step - 1) // self.steps_per_epoch
        return self.cfg.meta_enabled and epoch >= self.cfg.warmup_epochs and step % self.cfg.hyper_every == 0

    def head_trains_at(self, step: int) -> bool:
        """Whether a (non-hyper) step takes an online FT-head step.

        The head only serves the hyper-steps, so the baseline (meta off) never trains it. With
        ``online_head: at_hyper_steps`` it trains every step during the warm-up (so it is fitted
        when meta-learning starts) and afterwards only inside the hyper-steps.
        """
        if not self.cfg.meta_enabled:
            return False
        return self.cfg.online_head == "every_step" or (step - 1) // self.steps_per_epoch < self.cfg.warmup_epochs

    def run(self) -> "MetaPretrainer":
        self.resume()
        if self.step == 0:
            self._snapshot(0)
        with tqdm(total=self.total_steps, initial=self.step, desc="meta-PT", disable=not self.progress, unit="step") as bar:
            while self.step < self.total_steps:
                self._one_step()
                bar.update(1)
        self.save()
        return self

    def _one_step(self) -> None:
        p, cfg = self.problem, self.cfg
        step = self.step + 1
        faults.reach("pt.step")
        hyper = self.is_hyper_step(step)
        theta = p.theta()
        p.encoder.train()
        p.pt_head.train()
        batch = self.prepare(self.pt_stream.batch(self.step))
        loss = p.pt_loss(batch)
        check_finite(step, "PT loss", [loss.detach()])
        reuse = hyper and cfg.reuse_pt_graph
        grads = torch.autograd.grad(loss, theta, create_graph=reuse, materialize_grads=True)
        record = StepRecord(step=step, epoch=(step - 1) // self.steps_per_epoch, pt_loss=float(loss.detach()), hyper=hyper)
        if hyper:
            # With reuse, the hyper-step must run before θ moves: the graph holds the pre-step θ.
            graph = PTGraph(loss, list(grads)) if reuse else None
            if not reuse:
                self._pt_update(grads)
            self._hyper_step(record, graph)
            if reuse:
                self._pt_update(grads)
        else:
            self._pt_update(grads)
            if self.head_trains_at(step):
                self._online_head_step(record)
        self.step = step
        record.meta_summary = p.meta.summary()
        if step % cfg.snapshot_every == 0 or step == self.total_steps:
            record.phi = self._snapshot(step)
        for hook in self.hooks:
            hook(record)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            self.save()

    def _pt_update(self, grads: list[torch.Tensor]) -> None:
        for t, g in zip(self.problem.theta(), grads):
            t.grad = g.detach()
        self.pt_opt.step()
        self.pt_opt.zero_grad(set_to_none=True)

    def _online_head_step(self, record: StepRecord) -> None:
        """One FT-head step on detached features (encoder in eval: no RNG, no BN side effect)."""
        p = self.problem
        batch = self.prepare(next(self.ft_train_stream))
        was = p.encoder.training
        p.encoder.eval()
        with torch.no_grad():
            feats = p.features(batch)
        p.encoder.train(was)
        psi = list(p.named_head_params().values())
        new, state, loss = head_step(p, self.head_opt, psi, self.head_state, feats, batch)
        check_finite(record.step, "FT-head loss", [loss])
        self.head_state = state
        self._write_head(new)
        record.ft_loss = float(loss)

    def _write_head(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for t, v in zip(self.problem.named_head_params().values(), values):
                t.copy_(v)

    def _hyper_step(self, record: StepRecord, graph: PTGraph | None) -> None:
        p, hcfg = self.problem, self.cfg.hypergrad
        for _ in range(self.cfg.hyper_head_steps):
            self._online_head_step(StepRecord(step=record.step, epoch=record.epoch, pt_loss=record.pt_loss))
        if hcfg.needs_lambda_max and self.hyper_steps % hcfg.power_refresh == 0:
            self.lambda_max = None  # re-estimated inside this hyper-step
        ft_batches = [self.prepare(b) for b in self.ft_train_stream.take(hcfg.ft_steps)]
        val_batch = self.prepare(next(self.ft_val_stream))
        pt_batches = [] if graph is not None else [self.prepare(b) for b in self.hyper_pt_stream.take(hcfg.pt_batches)]
        res = hypergradient(
            p, self.head_opt, self.head_state, ft_batches, val_batch, pt_batches, hcfg,
            pt_lr=self.pt_opt.param_groups[0]["lr"], lambda_max=self.lambda_max, pt_graph=graph,
            catch_up_steps=self.cfg.hyper_every - 1 if self.cfg.online_head == "at_hyper_steps" else 0,
        )
        check_finite(record.step, "hypergradient", res.grads + [torch.tensor(res.val_loss)])
        faults.reach("hyper.step")
        self.lambda_max = res.lambda_max
        self._write_head(res.head_params)
        self.head_state = res.head_state
        for phi, g in zip(p.phi(), res.grads):
            phi.grad = g
        self.meta_opt.step()
        self.meta_opt.zero_grad(set_to_none=True)
        self.hyper_steps += 1
        record.val_loss, record.hypergrad_norm = res.val_loss, res.raw_norm
        record.alpha, record.neumann_growth = res.alpha, res.neumann_growth
        if res.neumann_bound is not None:
            record.neumann_bound, record.hvps_skipped = res.neumann_bound, float(res.hvps_skipped)
        if not math.isfinite(res.raw_norm):
            raise NonFiniteError(f"non-finite hypergradient norm at PT step {record.step}")

    def _snapshot(self, step: int) -> torch.Tensor:
        vec = self.problem.meta.trajectory_vector().clone()
        self.trajectory_steps.append(step)
        self.trajectory.append(vec)
        return vec
