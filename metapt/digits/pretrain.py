"""Digits pre-training: per task, SimCLR on that task's unlabelled PT pool with the method's policy, and
the pretrain stage's body (one encoder per task in one ``encoder.pt``).

MetaFT for meta-SimCLR: N labelled examples of the task from its PT pool (seeded, nested across N),
split 80/20 into MetaFT-train and MetaFT-val.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from metapt.digits.augment import AugmentationPolicy
from metapt.digits.domain import DOMAIN, TRANSFORMS
from metapt.digits.model import cnn
from metapt.digits.problem import SimCLRDigits
from metapt.digits.processed import TaskData, load_task
from metapt.digits.settings import DigitsParams
from metapt.engine import BatchStream, MetaPretrainer
from metapt.jobs import PTResult
from metapt.labelled import labelled_indices, pairs, stack, train_val_sizes
from metapt.records import PhiTrajectory


def task_seed(seed: int, task: str) -> int:
    """Each task's PT starts from its own seed, so a resumed job builds the same encoder for every task."""
    return 1000 * seed + sum(map(ord, task))


def build_trainer(method: str, task: str, data: TaskData, n_labels: int, cfg: DigitsParams, seed: int, *, hooks: Sequence = (),
                  checkpoint_dir: Path | None = None, device: torch.device | str = "cpu", progress: bool = False) -> MetaPretrainer:
    """The trainer of one task's SimCLR PT with the method's policy, before it runs (the PT job runs it;
    ``benchmarks/digits_step.py`` times its steps)."""
    torch.manual_seed(task_seed(seed, task))
    learns = DOMAIN.method(method).learns_phi
    pc = cfg.pretrain
    policy = AugmentationPolicy(cfg.policy.magnitudes(task, method))
    problem = SimCLRDigits(cnn(cfg), policy, data.y.shape[1], pc.temperature)
    loop = pc.loop if learns else pc.loop.model_copy(update={"warmup_epochs": pc.loop.epochs})
    n_tr, n_va = train_val_sizes(n_labels)
    lab = labelled_indices(data.pt, n_labels, seed)
    s = task_seed(seed, task)
    streams = [
        BatchStream(pairs(data.x, data.y, data.pt), min(pc.batch_size, len(data.pt)), seed=10 * s + 1, collate=stack, drop_last=True),
        BatchStream(pairs(data.x, data.y, lab[:n_tr]), min(pc.meta_batch_size, n_tr), seed=10 * s + 2, collate=stack),
        BatchStream(pairs(data.x, data.y, lab[n_tr:]), min(pc.meta_batch_size, n_va), seed=10 * s + 3, collate=stack),
    ]
    dev = torch.device(device)
    problem.to(dev)
    return MetaPretrainer(problem, *streams, loop, checkpoint_dir=checkpoint_dir, hooks=hooks, progress=progress,
                          prepare=lambda b: tuple(t.to(dev) for t in b))


def scoped(hooks: Sequence, task: str) -> list:
    """The job's hooks for one task: step metrics under ``pt/<task>/`` with their own journal (others as they are)."""
    return [h.scoped(task) if hasattr(h, "scoped") else h for h in hooks]


def merge_trajectories(trajectories: dict[str, PhiTrajectory]) -> PhiTrajectory:
    """One record for the run: columns ``<task>/<transform>`` over the union of the tasks' steps (NaN where a task has none)."""
    steps = np.unique(np.concatenate([t.steps for t in trajectories.values()]))
    columns, blocks = [], []
    for task, t in trajectories.items():
        block = np.full((len(steps), len(t.columns)), np.nan, np.float32)
        block[np.searchsorted(steps, t.steps)] = t.values
        columns += [f"{task}/{c}" for c in t.columns]
        blocks.append(block)
    return PhiTrajectory(steps, np.concatenate(blocks, axis=1), "magnitudes", tuple(columns))


def pretrain_run(profile, run, *, checkpoint_dir: Path, hooks: Sequence, device: torch.device, progress: bool) -> PTResult:
    """The pretrain stage's body: one encoder per task; meta-SimCLR learns each task's policy from ``run.labels`` of its labels."""
    cfg = profile.digits
    learns = DOMAIN.method(run.method).learns_phi
    encoders, log, trajectories, wall = nn.ModuleDict(), {"tasks": {}}, {}, 0.0
    for task in cfg.grid.tasks:
        t0 = time.perf_counter()
        trainer = build_trainer(run.method, task, load_task(task), run.labels or max(cfg.grid.labels), cfg, run.seed, hooks=scoped(hooks, task),
                                checkpoint_dir=checkpoint_dir / task, device=device, progress=progress).run()
        wall += time.perf_counter() - t0
        encoders[task] = trainer.problem.encoder
        final = trainer.problem.meta.magnitudes().detach().cpu().tolist()
        log["tasks"][task] = {"pt_steps": trainer.total_steps, "hyper_steps": trainer.hyper_steps, "magnitudes": dict(zip(TRANSFORMS, final))}
        if learns:
            trajectories[task] = trainer.phi_trajectory()
    log["pt_steps"] = sum(t["pt_steps"] for t in log["tasks"].values())
    log["hyper_steps"] = sum(t["hyper_steps"] for t in log["tasks"].values())
    return PTResult(encoders, log, {}, merge_trajectories(trajectories) if trajectories else None, {"pt_wall_s": wall})
