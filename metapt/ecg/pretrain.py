"""ECG pre-training: SimCLR with fixed augmentations, or meta-SimCLR whose warp learns from N labels,
and the pretrain stage's body.

MetaFT: N labelled records from the PT folds (seeded), split 80/20, with the paper's small-N splits
(25 → 15/10, 10 → 5/5).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from metapt.ecg.augment_learned import WarpAugmentation
from metapt.ecg.domain import DOMAIN
from metapt.ecg.labelled import metaft_sizes
from metapt.ecg.model import resnet
from metapt.ecg.problem import SimCLRECG
from metapt.ecg.processed import load_processed
from metapt.ecg.settings import ECGConfig
from metapt.engine import BatchStream, MetaPretrainer
from metapt.jobs import PTResult
from metapt.labelled import labelled_indices, pairs, stack

Method = Literal[DOMAIN.method_names]
METHODS: tuple[str, ...] = DOMAIN.method_names


def pretrain(method: Method, x: np.ndarray, y: np.ndarray, pt_idx: np.ndarray, n_labels: int, cfg: ECGConfig, seed: int, progress: bool = False,
             hooks: Sequence = (), checkpoint_dir: str | Path | None = None, device: torch.device | str = "cpu", return_trainer: bool = False):
    """SimCLR PT (fixed or learned warp) → (encoder, log[, trainer]); ``checkpoint_dir`` makes a killed run resume where it stopped."""
    torch.manual_seed(seed)
    m = cfg.model
    encoder = resnet(m)
    if method == "no_pt":
        return (encoder, {"pt_wall_s": 0.0}, None) if return_trainer else (encoder, {"pt_wall_s": 0.0})
    pc = cfg.pretrain
    warp = WarpAugmentation(channels=pc.warp_channels, scalar_lr=pc.warp_scalar_lr)
    problem = SimCLRECG(encoder, warp, use_meta_augmentation=DOMAIN.method(method).learns_phi)
    loop = pc.loop if DOMAIN.method(method).learns_phi else pc.loop.model_copy(update={"warmup_epochs": pc.loop.epochs})
    n_tr, n_va = metaft_sizes(n_labels)
    lab = labelled_indices(pt_idx, n_labels, seed)
    streams = [
        BatchStream(pairs(x, y, pt_idx), pc.batch_size, seed=10 * seed + 1, collate=stack, drop_last=True),
        BatchStream(pairs(x, y, lab[:n_tr]), min(pc.meta_batch_size, n_tr), seed=10 * seed + 2, collate=stack),
        BatchStream(pairs(x, y, lab[n_tr:]), min(pc.meta_batch_size, n_va), seed=10 * seed + 3, collate=stack),
    ]
    dev = torch.device(device)
    problem.to(dev)
    trainer = MetaPretrainer(problem, *streams, loop, checkpoint_dir=checkpoint_dir, hooks=hooks, progress=progress, prepare=lambda b: tuple(t.to(dev) for t in b))
    t0 = time.perf_counter()
    trainer.run()
    log = {"pt_wall_s": time.perf_counter() - t0, "pt_steps": trainer.total_steps, "hyper_steps": trainer.hyper_steps,
           "warp_std_final": float(warp.std().detach()), "warp_std_trajectory": [float(v[0]) for v in trainer.trajectory], "trajectory_steps": trainer.trajectory_steps}
    return (encoder, log, trainer) if return_trainer else (encoder, log)


def pretrain_run(profile, run, *, checkpoint_dir: Path, hooks: Sequence, device: torch.device, progress: bool) -> PTResult:
    """The pretrain stage's body: the baselines' PT never reads labels; meta-SimCLR learns from ``run.labels``."""
    cfg = profile.ecg
    x, y, pt_idx, _ = load_processed()
    n_labels = run.labels or max(cfg.grid.labels)
    encoder, log, trainer = pretrain(run.method, x, y, pt_idx, n_labels, cfg, run.seed, progress=progress, hooks=hooks,
                                     checkpoint_dir=checkpoint_dir, device=device, return_trainer=True)
    metrics = {"pt_wall_s": log.pop("pt_wall_s")}  # to MLflow: a wall time in a DVC output would change its hash on every run
    trajectory = trainer.phi_trajectory() if trainer is not None and DOMAIN.method(run.method).learns_phi else None
    return PTResult(encoder, log, {}, trajectory, metrics)
