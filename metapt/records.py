"""The typed records every stage writes and the report reads: one writer and one reader per format.

Torch-free (numpy only), so the report and the workflow read them without importing a model.
A record holds only what the computation determines: wall times, hosts and absolute paths go to
MLflow and ``.cache/``, never into a DVC output, so a cold reproduction rewrites no hash.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metapt.io import atomic_path, read_json, write_json


# ---------------------------------------------------------------------------------------- φ trajectory
@dataclass(frozen=True)
class PhiTrajectory:
    """φ over PT: ``values[i]`` at PT step ``steps[i]``. ``quantity`` names what the values are
    (``weights``: task weights w = 2·sigmoid(λ), already squashed; ``logits``; ``warp``: the learned
    augmentation's summary), and ``columns`` names each column when they are not one per task."""

    steps: np.ndarray  # [S] int64
    values: np.ndarray  # [S, D]
    quantity: str
    columns: tuple[str, ...] = ()

    def write(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, steps=np.asarray(self.steps, dtype=np.int64), values=np.asarray(self.values),
                                quantity=np.asarray(self.quantity), columns=np.asarray(self.columns, dtype=str))

    @classmethod
    def read(cls, path: str | os.PathLike) -> "PhiTrajectory":
        with np.load(path) as z:
            return cls(z["steps"], z["values"], str(z["quantity"]), tuple(str(c) for c in z["columns"]))

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]


# ---------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvalRow:
    """One value of one report cell: a PT seed's score in (column, row, metric, FT mode).

    ``setting`` is the table column (``full``, ``N=25``) and ``ft_labels`` its label budget where it
    has one (it orders the columns); ``method`` is the method's declared name and ``row`` the table
    row, which differs only for a run fine-tuned on more labels than it learned from
    (``learned_from``: row ``meta_simclr@10``).
    """

    domain: str
    setting: str
    method: str
    row: str
    seed: int
    mode: str
    metric: str
    value: float | None
    n_ft_seeds: int
    pt_run: str | None
    ft_run: str
    ft_labels: int | None = None
    learned_from: int | None = None


@dataclass(frozen=True)
class PTSummary:
    """What the report needs of one PT run: its counts and where its learned φ lies."""

    run: str
    method: str
    setting: str | None
    seed: int
    labels: int | None
    pt_steps: int | None
    hyper_steps: int | None
    weights: str | None = None  # final task weights (.npy), NaN for tasks held out of PT
    trajectory: str | None = None  # PhiTrajectory (.npz)
    weights_vs_truth: dict[str, Any] | None = None
    signal_ceiling: list[dict[str, Any]] | None = None  # per probed epoch (PPI uniform PT, metapt.ppi.probe)


@dataclass(frozen=True)
class Evaluation:
    """``results/<domain>/evaluation.json``: every row of a domain's tables, and its PT runs."""

    domain: str
    profile: str
    source: str
    truth: str | None
    rows: list[EvalRow] = field(default_factory=list)
    pretrain: list[PTSummary] = field(default_factory=list)

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, dataclasses.asdict(self))

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Evaluation":
        tree = read_json(path)
        return cls(**{**tree, "rows": [EvalRow(**r) for r in tree.get("rows", [])],
                      "pretrain": [PTSummary(**p) for p in tree.get("pretrain", [])]})


def read_evaluation(path: str | os.PathLike | None) -> Evaluation | None:
    """The evaluation file, or None if that domain was not run."""
    return Evaluation.read(path) if path is not None and Path(path).exists() else None
