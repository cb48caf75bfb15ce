"""Final fine-tuning and evaluation, shared by both domains.

A fresh linear head on the transferred encoder, trained with BCE over multi-label targets.
``full`` trains encoder and head; ``linear`` freezes the encoder (eval mode), so features are
computed once. The reported test scores are those of the best validation epoch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from metapt.engine.streams import BatchStream
from metapt.evaluate import mean_auroc, per_task_auroc
from metapt.settings import FTConfig


@dataclass
class FTResult:
    best_epoch: int
    val_auroc: list[float]  # per epoch
    test_auroc: dict[str, float]  # at the best validation epoch
    test_per_task: dict[str, list[float]] = field(default_factory=dict)
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # the FT checkpoint: head (+ encoder in full mode)

    def to_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "val_auroc": self.val_auroc, "test_auroc": self.test_auroc, "test_per_task": self.test_per_task}


Targets = Callable[[Any], torch.Tensor]


def _predict(encoder: nn.Module, head: nn.Module, data: Sequence, collate, targets: Targets, bs: int, prepare, inputs) -> tuple[np.ndarray, np.ndarray]:
    encoder.eval()
    ys, ss = [], []
    stream = BatchStream(data, bs, seed=0, collate=collate, shuffle=False)
    with torch.no_grad():
        for i in range(stream.batches_per_epoch):
            b = prepare(stream.batch(i))
            ss.append(head(encoder(inputs(b))).float().cpu())
            ys.append(targets(b).float().cpu())
    return torch.cat(ys).numpy(), torch.cat(ss).numpy()


def train_step(encoder: nn.Module, head: nn.Module, opt: torch.optim.Optimizer, inputs: Any, targets: torch.Tensor) -> torch.Tensor:
    """One FT step: BCE of the head on the encoder's features, backward, optimiser step."""
    loss = F.binary_cross_entropy_with_logits(head(encoder(inputs)), targets.float())
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


def _set_dropout(module: nn.Module, p: float | None) -> None:
    if p is not None:
        for m in module.modules():
            if isinstance(m, nn.Dropout):
                m.p = p


def finetune(
    encoder: nn.Module,
    n_out: int,
    train: Sequence,
    val: Sequence,
    tests: dict[str, Sequence],
    collate: Callable[[list], Any],
    targets: Targets,
    cfg: FTConfig,
    seed: int,
    tasks: np.ndarray | None = None,
    prepare: Callable[[Any], Any] = lambda b: b,
    progress: bool = False,
    inputs: Callable[[Any], Any] = lambda b: b,
) -> FTResult:
    """Fine-tune a copy of ``encoder`` (features of size ``encoder.out_dim``) and evaluate.

    ``tasks`` restricts training and evaluation to a subset of the label columns (held-out folds);
    ``inputs`` picks what the encoder takes from a batch (the whole batch by default).
    """
    torch.manual_seed(seed)
    encoder = copy.deepcopy(encoder)
    _set_dropout(encoder, cfg.dropout)
    cols = torch.as_tensor(tasks) if tasks is not None else None
    select: Targets = (lambda b: targets(b)[:, cols]) if cols is not None else targets
    n_out = len(cols) if cols is not None else n_out
    device = next(iter(encoder.parameters()), torch.empty(0)).device
    head = nn.Linear(encoder.out_dim, n_out).to(device)
    if cfg.mode == "linear":
        return _linear_eval(encoder, head, train, val, tests, collate, select, cfg, seed, prepare, progress, inputs)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    stream = BatchStream(train, cfg.batch_size, seed=seed, collate=collate)
    best, val_curve, best_state = -1, [], {}
    for epoch in tqdm(range(cfg.epochs), desc=f"FT ({cfg.mode})", disable=not progress):
        encoder.train()
        for _ in range(cfg.steps_per_epoch or stream.batches_per_epoch):
            b = prepare(next(stream))
            train_step(encoder, head, opt, inputs(b), select(b))
        val_curve.append(mean_auroc(*_predict(encoder, head, val, collate, select, 256, prepare, inputs)))
        if best < 0 or val_curve[-1] > val_curve[best]:
            best = epoch
            best_state = {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in (("encoder", encoder), ("head", head)) if list(m.state_dict())}
    # the test sets are scored once, with the weights of the best validation epoch
    for name, m in (("encoder", encoder), ("head", head)):
        if name in best_state:
            m.load_state_dict(best_state[name])
    test_at_best, per_task_at_best = _evaluate_tests(encoder, head, tests, collate, select, prepare, inputs)
    best_state = {name: {k: v.cpu() for k, v in sd.items()} for name, sd in best_state.items()}
    return FTResult(best, val_curve, test_at_best, per_task_at_best, best_state)


def finetune_modes(encoder: nn.Module, n_out: int, train: Sequence, val: Sequence, test: Sequence, modes: dict[str, FTConfig], ft_seeds: Sequence[int],
                   collate: Callable[[list], Any], device: torch.device, states: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Final FT of (images, labels) batches in every mode and FT seed: {mode: {test_macro_auroc (mean over FT seeds), runs}}.

    ``states``, if given, receives each FT run's best-validation weights under ``"<mode>/ft_seed<s>"``.
    """
    out: dict[str, Any] = {}
    for mode, cfg in modes.items():
        runs = []
        for s in ft_seeds:
            res = finetune(encoder, n_out, train, val, {"test": test}, collate, lambda b: b[1], cfg, seed=s, progress=progress,
                           inputs=lambda b: b[0], prepare=lambda b: tuple(t.to(device) for t in b))
            if states is not None:
                states[f"{mode}/ft_seed{s}"] = res.best_state
            runs.append(res.to_dict())
        out[mode] = {"test_macro_auroc": float(np.mean([r["test_auroc"]["test"] for r in runs])), "runs": runs}
    return out


def _evaluate_tests(encoder, head, tests, collate, select, prepare, inputs):
    scores, per_task = {}, {}
    for name, data in tests.items():
        y, s = _predict(encoder, head, data, collate, select, 256, prepare, inputs)
        aucs = per_task_auroc(y, s)
        per_task[name] = [None if np.isnan(a) else float(a) for a in aucs]
        scores[name] = float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")
    return scores, per_task


class TensorPairs:
    """(features, labels) rows as a dataset whose batches are two indexings (``BatchStream`` calls ``gather``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.y[idx]


class _Features(nn.Module):
    """Stands in for the frozen encoder once its features are computed."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.out_dim = out_dim

    def forward(self, batch):
        return batch[0]


def _linear_eval(encoder, head, train, val, tests, collate, select, cfg, seed, prepare, progress, inputs) -> FTResult:
    """Frozen encoder: compute features once per split, then train the head on tensors."""

    def featurise(data):
        encoder.eval()
        stream = BatchStream(data, 256, seed=0, collate=collate, shuffle=False)
        feats, ys = [], []
        with torch.no_grad():
            for i in range(stream.batches_per_epoch):
                b = prepare(stream.batch(i))
                feats.append(encoder(inputs(b)))
                ys.append(select(b).float())
        return TensorPairs(torch.cat(feats), torch.cat(ys))

    stack = lambda items: tuple(torch.stack(t) for t in zip(*items))  # noqa: E731  (unused: TensorPairs gathers)
    frozen = _Features(encoder.out_dim)
    head_only_cfg = cfg.model_copy(update={"mode": "full", "dropout": None})
    return finetune(
        frozen, head.out_features, featurise(train), featurise(val), {k: featurise(v) for k, v in tests.items()},
        stack, lambda b: b[1], head_only_cfg, seed, progress=progress,
    )
