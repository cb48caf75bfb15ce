"""One PPI run: pre-train with a method, fine-tune, evaluate; every row of the paper's table.

Methods: ``no_pt``; ``uniform`` (Hu et al.'s supervised multitask PT); ``meta`` (learned task
weights); ``cotrain`` and ``cotrain_pcgrad``; ``task_selection`` (re-PT sampling tasks from the
weights a ``meta`` run learned); ``agnostic`` (meta-objective on held-out PT tasks); ``oracle``
(synthetic only: PT on the planted helpful tasks).
Access settings: ``full`` (MetaFT = FT train/val), ``partial`` (a random 50 %), ``heldout``
(the meta-objective uses 30 FT tasks; final FT and evaluation use the other 10, fold 0–3).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch

from metapt.engine import BatchStream, MetaPretrainer, StepRecord, TaskWeights
from metapt.engine.agnostic import TaskSplit
from metapt.engine.cotrain import CoTrainer
from metapt.engine.metaparams import FixedTaskWeights, SampledTasks
from metapt.evaluate import weights_vs_truth
from metapt.finetune import finetune
from metapt.ppi.model import GIN
from metapt.ppi.problem import MultitaskPPI
from metapt.ppi.settings import GINConfig, PPIConfig, PPIPretrainConfig  # noqa: F401  (re-exported)
from metapt.ppi.splits import PPISplits

Method = Literal["no_pt", "uniform", "meta", "cotrain", "cotrain_pcgrad", "task_selection", "agnostic", "oracle"]
Access = Literal["full", "partial", "heldout"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


def with_ft_budget(splits: PPISplits, budget: tuple[int, int] | None, seed: int = 42) -> PPISplits:
    """FT train/val cut to a label budget (MetaFT and final FT both use it); partial access halves it."""
    if budget is None:
        return splits
    n_train, n_val = budget
    if n_train > len(splits.ft_train) or n_val > len(splits.ft_val):
        raise ValueError(f"ft_budget {budget} exceeds the FT split sizes ({len(splits.ft_train)}, {len(splits.ft_val)})")
    rng = np.random.default_rng(seed)
    tr, va = rng.permutation(splits.ft_train)[:n_train], rng.permutation(splits.ft_val)[:n_val]
    return dataclasses.replace(
        splits, ft_train=tr, ft_val=va,
        metaft_train_partial=rng.permutation(tr)[: max(1, n_train // 2)], metaft_val_partial=rng.permutation(va)[: max(1, n_val // 2)],
    )


def collate_graphs(offset_center: bool = True):
    """PyG collate; ``offset_center=False`` undoes the centre-index offset (the authors' PT quirk)."""

    def collate(graphs: list) -> Batch:
        batch = Batch.from_data_list(graphs)
        if not offset_center:
            batch.center_node_idx = batch.center_node_idx - batch.ptr[:-1]
        return batch

    return collate


def subset(graphs: Sequence, idx: np.ndarray) -> list:
    return [graphs[int(i)] for i in idx]


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
) -> PTOutcome:
    """Pre-train a GIN with ``method``; returns the encoder and what the method learned."""
    device = torch.device(device)
    torch.manual_seed(seed)
    m = cfg.model
    encoder = GIN(m.layers, m.hidden, m.dropout)
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
    meta = _meta_for(method, len(pt_columns), truth, learned_weights, pt_columns)
    problem = MultitaskPPI(encoder, torch.as_tensor(pt_columns), torch.as_tensor(meta_columns), meta_target, meta).to(device)

    loop = cfg.pretrain.loop
    if method not in ("meta", "agnostic"):
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
    if truth is not None and method in ("meta", "agnostic"):
        tracker = WeightTruthTracker(meta, truth, pt_columns, spe)
        all_hooks.append(tracker)
    trainer_cls = CoTrainer if method.startswith("cotrain") else MetaPretrainer
    extra = {"pcgrad": method == "cotrain_pcgrad"} if method.startswith("cotrain") else {}
    trainer = trainer_cls(problem, *streams, loop, checkpoint_dir=checkpoint_dir, hooks=all_hooks, progress=progress, prepare=lambda b: b.to(device), **extra)
    t0 = time.perf_counter()
    trainer.run()
    log: dict[str, Any] = {"pt_wall_s": time.perf_counter() - t0, "pt_steps": trainer.total_steps, "hyper_steps": trainer.hyper_steps, "meta_summary_final": meta.summary()}
    if tracker is not None:
        log["weights_vs_truth_per_epoch"] = tracker.per_epoch
    if isinstance(trainer, CoTrainer):
        log["grad_conflict_frac"] = trainer.conflict_steps / max(1, trainer.total_steps)
    weights = None
    if method in ("meta", "agnostic", "oracle"):  # weights over all PT tasks; NaN for tasks held out of PT
        weights = np.full(n_pt, np.nan, dtype=np.float32)
        weights[pt_columns] = meta.weights().detach().cpu().numpy()
    return PTOutcome(problem.encoder, weights, log, trainer)


def _meta_for(method: str, n_tasks: int, truth: dict | None, learned: np.ndarray | None, columns: np.ndarray):
    if method in ("meta", "agnostic"):
        return TaskWeights(n_tasks)
    if method == "oracle":
        if truth is None:
            raise ValueError("method 'oracle' needs the planted ground truth (synthetic data only)")
        return FixedTaskWeights(torch.as_tensor(np.asarray(truth["helpful_mask"], dtype=np.float32)[columns]))
    if method == "task_selection":
        if learned is None:
            raise ValueError("method 'task_selection' needs the task weights learned by a 'meta' run")
        return SampledTasks(torch.as_tensor(learned, dtype=torch.float32))
    return FixedTaskWeights(torch.ones(n_tasks))  # uniform, cotrain, cotrain_pcgrad


def evaluate(
    encoder: GIN,
    graphs: Sequence,
    splits: PPISplits,
    cfg: PPIConfig,
    access: Access = "full",
    fold: int = 0,
    modes: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    states: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Final FT (fresh 40-way head, GNN weights only) per mode and FT seed; test-hard/test-easy AUROC.

    ``states``, if given, receives each FT run's best-validation weights under ``"<mode>/ft_seed<s>"``.
    """
    tasks = splits.heldout_tasks(fold) if access == "heldout" else None
    n_ft = int(graphs[0].go_target_downstream.numel())
    tests = {"test_hard": subset(graphs, splits.test_hard), "test_easy": subset(graphs, splits.test_easy)}
    train, val = subset(graphs, splits.ft_train), subset(graphs, splits.ft_val)
    targets = lambda b: b.go_target_downstream.view(b.num_graphs, -1)  # noqa: E731
    dev = torch.device(device)
    out: dict[str, Any] = {}
    for mode in modes or list(cfg.finetune):
        runs = []
        t0 = time.perf_counter()
        for s in cfg.ft_seeds:
            res = finetune(encoder, n_ft, train, val, tests, collate_graphs(), targets, cfg.finetune[mode], seed=s, tasks=tasks, prepare=lambda b: b.to(dev), progress=progress)
            if states is not None:
                states[f"{mode}/ft_seed{s}"] = res.best_state
            runs.append({"ft_seed": s, **res.to_dict()})
        out[mode] = {
            "runs": runs,
            "test_hard": float(np.mean([r["test_auroc"]["test_hard"] for r in runs])),
            "test_easy": float(np.mean([r["test_auroc"]["test_easy"] for r in runs])),
            "ft_wall_s": time.perf_counter() - t0,
        }
    return out
