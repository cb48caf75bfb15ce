"""PPI pre-training: every method of the domain declaration on one GIN, and the pretrain stage's body.

``pretrain`` is the research API (the trial runners and the ablation call it); ``pretrain_run`` is what
the pipeline's generic pretrain stage (``metapt.pipeline``) calls for one declared run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from metapt.engine import BatchStream, MetaPretrainer, SimplexTaskWeights, StepRecord, TaskWeights
from metapt.engine.agnostic import TaskSplit
from metapt.engine.cotrain import CoTrainer
from metapt.engine.metaparams import FixedTaskWeights, SampledTasks
from metapt.evaluate import weights_vs_truth
from metapt.jobs import PTResult
from metapt.ppi.domain import DOMAIN
from metapt.ppi.graphs import collate_graphs, subset
from metapt.ppi.model import GIN, gin
from metapt.ppi.probe import CeilingProbe
from metapt.ppi.problem import MultitaskPPI
from metapt.ppi.processed import load_processed
from metapt.ppi.settings import PPIConfig, PPIPretrainConfig
from metapt.ppi.splits import PPISplits, with_ft_budget

Method = Literal[DOMAIN.method_names]
Access = Literal["full", "partial", "heldout"]
METHODS: tuple[str, ...] = DOMAIN.method_names


@dataclass
class PTOutcome:
    encoder: GIN
    weights: np.ndarray | None  # final PT-task weights (meta, task_selection, oracle, uniform)
    log: dict[str, Any] = field(default_factory=dict)
    trainer: MetaPretrainer | None = None


class WeightTruthTracker:
    """Hook: weights-versus-planted-truth metrics at every epoch end (synthetic data only)."""

    def __init__(self, meta, truth: dict, columns: np.ndarray, steps_per_epoch: int):
        self.meta, self.spe = meta, steps_per_epoch
        self.helpful = np.asarray(truth["helpful_mask"], dtype=bool)[columns]
        self.kinds = [truth["pt_kind"][int(c)] for c in columns]
        score = truth.get("helpfulness")
        self.helpfulness = np.asarray(score, dtype=float)[columns] if score is not None else None
        self.per_epoch: list[dict[str, float]] = []

    def __call__(self, record: StepRecord) -> None:
        if record.step % self.spe == 0:
            w = self.meta.weights().detach().cpu().numpy()
            self.per_epoch.append({"epoch": record.step // self.spe, **weights_vs_truth(w, self.helpful, self.kinds, self.helpfulness)})

    def state_dict(self) -> dict[str, Any]:
        """Journaled with each checkpoint (``metapt.engine.JournaledHook``): a resumed run keeps the epochs before it."""
        return {"per_epoch": [dict(e) for e in self.per_epoch]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.per_epoch = [dict(e) for e in state["per_epoch"]]


def metaft_indices(splits: PPISplits, access: Access) -> tuple[np.ndarray, np.ndarray]:
    if access == "partial":
        return splits.metaft_train_partial, splits.metaft_val_partial
    return splits.ft_train, splits.ft_val


def pretrain(
    method: Method,
    graphs: Sequence,
    splits: PPISplits,
    cfg: PPIConfig,
    seed: int,
    access: Access = "full",
    fold: int = 0,
    truth: dict | None = None,
    learned_weights: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    hooks: Sequence = (),
    device: torch.device | str = "cpu",
    progress: bool = False,
    probe_metaft: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> PTOutcome:
    """Pre-train a GIN with ``method``; returns the encoder and what the method learned.

    ``probe_metaft`` (column → MetaFT train/val indices) are the label budgets the signal-ceiling probe scores
    against; None: the run's own MetaFT split, as column ``full``.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    m = cfg.model
    encoder = gin(m)
    if method == "no_pt":
        return PTOutcome(encoder.to(device), None, {"pt_wall_s": 0.0})
    n_pt = int(graphs[0].go_target_pretrain.numel())
    n_ft = int(graphs[0].go_target_downstream.numel())
    pt_columns, meta_columns, meta_target = np.arange(n_pt), np.arange(n_ft), "downstream"
    if access == "heldout":
        meta_columns = splits.meta_tasks(fold)
    if method == "agnostic":
        task_split = TaskSplit.random(n_pt, cfg.pretrain.agnostic_held_out_frac, seed)
        pt_columns, meta_columns, meta_target = task_split.kept.numpy(), task_split.held_out.numpy(), "pretrain"
    meta = _meta_for(method, len(pt_columns), truth, learned_weights, pt_columns, cfg.pretrain)
    problem = MultitaskPPI(encoder, torch.as_tensor(pt_columns), torch.as_tensor(meta_columns), meta_target, meta).to(device)

    loop = cfg.pretrain.loop
    if not DOMAIN.method(method).learns_phi:
        loop = loop.model_copy(update={"warmup_epochs": loop.epochs})  # meta off: the baseline path
    pt_collate = collate_graphs(m.offset_center_in_pt)
    if method == "agnostic":  # MetaFT from PT graphs and held-out PT tasks
        perm = np.random.default_rng(seed).permutation(splits.meta_pt)
        cut = int(0.85 * len(perm))
        mft_train, mft_val = perm[:cut], perm[cut:]
    else:
        mft_train, mft_val = metaft_indices(splits, access)
    bs, mbs = cfg.pretrain.batch_size, cfg.pretrain.meta_batch_size
    streams = [
        BatchStream(subset(graphs, splits.meta_pt), bs, seed=10 * seed + 1, collate=pt_collate),
        BatchStream(subset(graphs, mft_train), mbs, seed=10 * seed + 2, collate=collate_graphs()),
        BatchStream(subset(graphs, mft_val), mbs, seed=10 * seed + 3, collate=collate_graphs()),
    ]
    tracker = None
    all_hooks = list(hooks)
    spe = loop.steps_per_epoch or streams[0].batches_per_epoch
    if truth is not None and DOMAIN.method(method).learns_phi:
        tracker = WeightTruthTracker(meta, truth, pt_columns, spe)
        all_hooks.append(tracker)
    probe = None
    if cfg.pretrain.probe.epochs and _probes(method):
        pc = cfg.pretrain.probe
        metaft = probe_metaft if probe_metaft is not None else {"full": (mft_train, mft_val)}
        probe = CeilingProbe(problem, graphs, splits.meta_pt, metaft, truth, pc.epochs, spe, pc.bootstrap, pc.batch_size, seed, progress=progress)
        all_hooks.append(probe)
    trainer_cls = CoTrainer if method.startswith("cotrain") else MetaPretrainer
    extra = {"pcgrad": method == "cotrain_pcgrad"} if method.startswith("cotrain") else {}
    trainer = trainer_cls(problem, *streams, loop, checkpoint_dir=checkpoint_dir, hooks=all_hooks, progress=progress, prepare=lambda b: b.to(device), **extra)
    t0 = time.perf_counter()
    trainer.run()
    log: dict[str, Any] = {"pt_wall_s": time.perf_counter() - t0, "pt_steps": trainer.total_steps, "hyper_steps": trainer.hyper_steps, "meta_summary_final": meta.summary()}
    if tracker is not None:
        log["weights_vs_truth_per_epoch"] = tracker.per_epoch
    if probe is not None:
        log["signal_ceiling_per_epoch"] = probe.per_epoch
    if isinstance(trainer, CoTrainer):
        log["grad_conflict_frac"] = trainer.conflict_steps / max(1, trainer.total_steps)
    weights = None
    if DOMAIN.method(method).learns_phi or DOMAIN.method(method).reuses or method == "oracle":  # over all PT tasks; NaN: held out of PT
        weights = np.full(n_pt, np.nan, dtype=np.float32)
        weights[pt_columns] = meta.weights().detach().cpu().numpy()
    return PTOutcome(problem.encoder, weights, log, trainer)


def _probes(method: str) -> bool:
    """The ceiling is a property of the plain baseline's PT (fixed weights, no FT data, no planted truth): uniform."""
    m = DOMAIN.method(method)
    return m.pretrains and not (m.learns_phi or m.sees_ft_data or m.upper_bound)


def _meta_for(method: str, n_tasks: int, truth: dict | None, learned: np.ndarray | None, columns: np.ndarray, pcfg: PPIPretrainConfig):
    if DOMAIN.method(method).learns_phi:
        return SimplexTaskWeights(n_tasks) if pcfg.weights == "simplex" else TaskWeights(n_tasks)
    if method == "oracle":
        if truth is None:
            raise ValueError("method 'oracle' needs the planted ground truth (synthetic data only)")
        return FixedTaskWeights(torch.as_tensor(np.asarray(truth["helpful_mask"], dtype=np.float32)[columns]))
    if method == "task_selection":
        if learned is None:
            raise ValueError("method 'task_selection' needs the task weights learned by a 'meta' run")
        if pcfg.selection.rule == "sampled":
            return SampledTasks(torch.as_tensor(learned, dtype=torch.float32))
        return FixedTaskWeights(torch.as_tensor(top_k_mask(learned, pcfg.selection.top_frac)))
    return FixedTaskWeights(torch.ones(n_tasks))  # uniform, cotrain, cotrain_pcgrad


def top_k_mask(learned: np.ndarray, frac: float) -> np.ndarray:
    """1 on the ``round(frac · T)`` (at least 1) tasks with the highest learned weight, 0 elsewhere; ties by task index."""
    learned = np.asarray(learned, dtype=np.float64)
    if not np.isfinite(learned).all():
        raise ValueError("task_selection needs a finite learned weight for every PT task")
    k = max(1, round(frac * len(learned)))
    mask = np.zeros(len(learned), dtype=np.float32)
    mask[np.argsort(-learned, kind="stable")[:k]] = 1.0
    return mask


def pretrain_run(profile, run, *, checkpoint_dir: Path, hooks: Sequence, device: torch.device, progress: bool) -> PTResult:
    """The pretrain stage's body for one declared run: PT (MetaFT at the run's label budget), then the learned weights scored
    against the planted truth."""
    cfg = profile.ppi
    graphs, full, truth = load_processed()
    splits = with_ft_budget(full, cfg.budget(run.labels))
    # uniform PT reads no FT labels, so its probe scores the PT tasks against MetaFT at every budget of the axis
    probe_metaft = {col: metaft_indices(with_ft_budget(full, b), run.setting) for col, b in cfg.budgets().items()}
    source = DOMAIN.source(run)  # learn, then re-PT: the weights the meta run of this seed and budget learned
    learned = np.load(source.pretrain_dir / "weights.npy", allow_pickle=False) if source is not None else None
    pt = pretrain(run.method, graphs, splits, cfg, run.seed, access=run.setting, fold=cfg.grid.heldout_fold, truth=truth, learned_weights=learned,
                  checkpoint_dir=checkpoint_dir, hooks=hooks, device=device, progress=progress, probe_metaft=probe_metaft)
    log, arrays = dict(pt.log), {}
    if source is not None:
        log["reused_run"] = source.name
    metrics = {"pt_wall_s": log.pop("pt_wall_s")}  # to MLflow: a wall time in a DVC output would change its hash on every run
    if pt.weights is not None:
        arrays["weights.npy"] = pt.weights
        if truth is not None:
            ok = np.isfinite(pt.weights)
            log["weights_vs_truth"] = weights_vs_truth(pt.weights[ok], np.asarray(truth["helpful_mask"])[ok],
                                                       [k for k, o in zip(truth["pt_kind"], ok) if o], np.asarray(truth["helpfulness"])[ok])
            metrics.update({f"final/{k}": v for k, v in log["weights_vs_truth"].items()})
    learns = DOMAIN.method(run.method).learns_phi
    trajectory = pt.trainer.phi_trajectory() if pt.trainer is not None and learns else None
    return PTResult(pt.encoder, log, arrays, trajectory, metrics)
