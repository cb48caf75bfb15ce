"""One ECG run: SimCLR pre-training (fixed or learned augmentation), FT on N labels, macro AUROC.

Methods: ``no_pt``; ``simclr`` (fixed default augmentations, no meta-updates: the baseline, on
the same loop); ``meta_simclr`` (the learned warp as φ, meta-objective on MetaFT-val).
MetaFT: N labelled records from the PT folds (seeded), split 80/20, with the paper's small-N
splits (25 → 15/10, 10 → 5/5). Final FT uses N_FT ≥ N labels (N_FT > N is partial access) and is
evaluated on the test fold: macro AUROC over the 5 superclasses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from metapt.ecg.augment_learned import WarpAugmentation
from metapt.ecg.model import ResNet1d
from metapt.ecg.problem import SimCLRECG
from metapt.engine import BatchStream, MetaPretrainer
from metapt.ecg.settings import ECGConfig, ECGPretrainConfig, ResNetConfig  # noqa: F401  (re-exported)
from metapt.finetune import finetune

Method = Literal["no_pt", "simclr", "meta_simclr"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


def metaft_sizes(n: int) -> tuple[int, int]:
    """MetaFT-train/val sizes for N labels: 80/20, except the paper's 25 → 15/10 and 10 → 5/5."""
    special = {25: (15, 10), 10: (5, 5)}
    if n in special:
        return special[n]
    if n < 2:
        raise ValueError(f"N must be ≥ 2 labelled examples, got {n}")
    n_val = max(1, round(0.2 * n))
    return n - n_val, n_val


def labelled_indices(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first n of a seeded permutation of the PT-fold records: nested across N for one seed."""
    if n > len(pool):
        raise ValueError(f"asked for {n} labelled examples, only {len(pool)} records in the PT folds")
    return np.random.default_rng(seed).permutation(pool)[:n]


def _pairs(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in idx]


def stack(items):
    return tuple(torch.stack(t) for t in zip(*items))


def pretrain(method: Method, x: np.ndarray, y: np.ndarray, pt_idx: np.ndarray, n_labels: int, cfg: ECGConfig, seed: int, progress: bool = False,
             hooks: Sequence = (), checkpoint_dir: str | Path | None = None, device: torch.device | str = "cpu") -> tuple[ResNet1d, dict[str, Any]]:
    """SimCLR PT (fixed or learned warp); ``checkpoint_dir`` makes a killed run resume where it stopped."""
    torch.manual_seed(seed)
    m = cfg.model
    encoder = ResNet1d(widths=m.widths, strides=m.strides, blocks=m.blocks, kernel=m.kernel, stem_stride=m.stem_stride)
    if method == "no_pt":
        return encoder, {"pt_wall_s": 0.0}
    pc = cfg.pretrain
    warp = WarpAugmentation(channels=pc.warp_channels, scalar_lr=pc.warp_scalar_lr)
    problem = SimCLRECG(encoder, warp, use_meta_augmentation=method == "meta_simclr")
    loop = pc.loop if method == "meta_simclr" else pc.loop.model_copy(update={"warmup_epochs": pc.loop.epochs})
    n_tr, n_va = metaft_sizes(n_labels)
    lab = labelled_indices(pt_idx, n_labels, seed)
    streams = [
        BatchStream(_pairs(x, y, pt_idx), pc.batch_size, seed=10 * seed + 1, collate=stack, drop_last=True),
        BatchStream(_pairs(x, y, lab[:n_tr]), min(pc.meta_batch_size, n_tr), seed=10 * seed + 2, collate=stack),
        BatchStream(_pairs(x, y, lab[n_tr:]), min(pc.meta_batch_size, n_va), seed=10 * seed + 3, collate=stack),
    ]
    dev = torch.device(device)
    problem.to(dev)
    trainer = MetaPretrainer(problem, *streams, loop, checkpoint_dir=checkpoint_dir, hooks=hooks, progress=progress, prepare=lambda b: tuple(t.to(dev) for t in b))
    t0 = time.perf_counter()
    trainer.run()
    log = {"pt_wall_s": time.perf_counter() - t0, "pt_steps": trainer.total_steps, "hyper_steps": trainer.hyper_steps,
           "warp_std_final": float(warp.std().detach()), "warp_std_trajectory": [float(v[0]) for v in trainer.trajectory], "trajectory_steps": trainer.trajectory_steps}
    return encoder, log


def evaluate(encoder: ResNet1d, x: np.ndarray, y: np.ndarray, pt_idx: np.ndarray, test_idx: np.ndarray, n_ft: int, cfg: ECGConfig, seed: int, modes: list[str] | None = None, progress: bool = False,
             states: dict[str, Any] | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Final FT on n_ft labels from the PT folds (80/20 train/val), macro AUROC on the test fold.

    ``states``, if given, receives each FT run's best-validation weights under ``"<mode>/ft_seed<s>"``.
    """
    lab = labelled_indices(pt_idx, n_ft, seed)
    n_tr, _ = metaft_sizes(n_ft)
    train, val, test = _pairs(x, y, lab[:n_tr]), _pairs(x, y, lab[n_tr:]), _pairs(x, y, test_idx)
    out: dict[str, Any] = {}
    dev = torch.device(device)
    for mode in modes or list(cfg.finetune):
        runs = []
        for s in cfg.ft_seeds:
            res = finetune(encoder, y.shape[1], train, val, {"test": test}, stack, lambda b: b[1], cfg.finetune[mode], seed=s, progress=progress,
                           inputs=lambda b: b[0], prepare=lambda b: tuple(t.to(dev) for t in b))
            if states is not None:
                states[f"{mode}/ft_seed{s}"] = res.best_state
            runs.append(res.to_dict())
        out[mode] = {"test_macro_auroc": float(np.mean([r["test_auroc"]["test"] for r in runs])), "runs": runs}
    return out
