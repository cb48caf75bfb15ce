"""The paper's PPI splits (Hu et al. 2020; Raghu et al. 2021), as index arrays over the graph list.

The shuffles replicate the authors' code so that the real data gets the published splits:
``random_split`` shuffles ``list(range(n))`` with Python's ``random`` seeded 42 and cuts at
``int(frac·n)`` (which can leave a graph out: those go to ``dropped``); partial FT access
(``--smallft``) uses ``torch.utils.data.random_split`` under ``torch.manual_seed(0)``, first on FT
train then on FT val; held-out task fold f holds out FT tasks ``10f … 10f+9`` (``get_subset_fold``).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

TRAIN_VAL_SPECIES: tuple[int, ...] = (3702, 6239, 511145, 7227, 10090, 4932, 7955)
TEST_SPECIES: tuple[int, ...] = (9606,)  # human
SPLIT_SEED = 42
FT_FRACS = (0.85, 0.15)  # FT train/val of the train/val species (the authors' frac_train, frac_valid)
TEST_FRACS = (0.5, 0.5)  # human → test-easy/test-hard
PARTIAL_FRAC = 0.5  # partial FT access: MetaFT sees half of FT train and of FT val
PARTIAL_SEED = 0  # the authors' torch.manual_seed(0) before their random_split
N_FT_TASKS = 40
N_TASK_FOLDS = 4


class SplitError(ValueError):
    """The graphs cannot be split as the paper does (missing species, too few graphs, …)."""


def _readonly(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class PPISplits:
    """Graph index arrays of every split; arrays are read-only. ``meta_pt`` keeps the authors' order."""

    train_val: np.ndarray  # graphs of the train/val species, in dataset order
    test: np.ndarray  # human graphs, in dataset order
    ft_train: np.ndarray
    ft_val: np.ndarray
    test_easy: np.ndarray
    test_hard: np.ndarray
    meta_pt: np.ndarray  # train_val then test_easy (their PT labels are used)
    metaft_train_partial: np.ndarray  # partial access: a random PARTIAL_FRAC of ft_train
    metaft_val_partial: np.ndarray  # … and of ft_val
    dropped: np.ndarray  # left out by the int() cuts of the authors' random_split
    n_ft_tasks: int = N_FT_TASKS
    n_task_folds: int = N_TASK_FOLDS

    @property
    def task_folds(self) -> tuple[np.ndarray, ...]:
        """Fold f's held-out FT tasks: a contiguous block, as in the authors' ``get_subset_fold``."""
        return tuple(np.array_split(np.arange(self.n_ft_tasks), self.n_task_folds))

    def heldout_tasks(self, fold: int) -> np.ndarray:
        """FT tasks used for final FT/eval in the held-out-task variant."""
        if not 0 <= fold < self.n_task_folds:
            raise SplitError(f"fold must be in [0, {self.n_task_folds}), got {fold}")
        return self.task_folds[fold]

    def meta_tasks(self, fold: int) -> np.ndarray:
        """FT tasks the meta-objective uses in the held-out-task variant (the other folds)."""
        return np.setdiff1d(np.arange(self.n_ft_tasks), self.heldout_tasks(fold))


def authors_random_split(n: int, fracs: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pretrain-gnns ``random_split`` with frac_test = 0: (first, second, dropped) positions in 0..n-1.

    Both fractions are passed as the authors wrote them: int(0.15·n) and int((1 − 0.85)·n) can differ.
    """
    idx = list(range(n))
    random.Random(seed).shuffle(idx)  # same stream as random.seed(seed); random.shuffle(idx)
    a = int(fracs[0] * n)
    b = a + int(fracs[1] * n)
    return np.array(idx[:a], dtype=np.int64), np.array(idx[a:b], dtype=np.int64), np.array(idx[b:], dtype=np.int64)


def _torch_subset(idx: np.ndarray, frac: float, gen: torch.Generator) -> np.ndarray:
    """The first part of ``torch.utils.data.random_split(idx, [int(frac·n), rest])``."""
    perm = torch.randperm(len(idx), generator=gen).numpy()
    return idx[perm[: int(frac * len(idx))]]


def species_ids(graphs: Sequence) -> np.ndarray:
    """Per-graph NCBI taxon ids of a graph list (each graph has ``species_id`` of shape [1])."""
    return np.array([int(g.species_id.reshape(-1)[0]) for g in graphs], dtype=np.int64)


def make_splits(
    species: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    seed: int = SPLIT_SEED,
    ft_fracs: tuple[float, float] = FT_FRACS,
    test_fracs: tuple[float, float] = TEST_FRACS,
    partial_frac: float = PARTIAL_FRAC,
    partial_seed: int = PARTIAL_SEED,
    n_ft_tasks: int = N_FT_TASKS,
    n_task_folds: int = N_TASK_FOLDS,
) -> PPISplits:
    """Split graphs given each graph's species id; every array holds indices into that list."""
    sp = np.asarray(torch.as_tensor(species).reshape(-1), dtype=np.int64)
    in_tv, in_test = np.isin(sp, TRAIN_VAL_SPECIES), np.isin(sp, TEST_SPECIES)
    if not (in_tv | in_test).all():
        bad = sorted(set(sp[~(in_tv | in_test)].tolist()))
        raise SplitError(f"species ids {bad} are neither train/val {TRAIN_VAL_SPECIES} nor test {TEST_SPECIES}")
    train_val, test = np.flatnonzero(in_tv), np.flatnonzero(in_test)
    if len(test) < 2:
        raise SplitError(f"need ≥ 2 human (9606) graphs for test-easy and test-hard, found {len(test)}")
    if not 0 < partial_frac <= 1:
        raise SplitError(f"partial_frac must be in (0, 1], got {partial_frac}")
    if n_ft_tasks % n_task_folds:
        raise SplitError(f"{n_ft_tasks} FT tasks do not make {n_task_folds} equal folds")

    if any(f <= 0 for f in (*ft_fracs, *test_fracs)) or max(sum(ft_fracs), sum(test_fracs)) > 1 + 1e-9:
        raise SplitError(f"split fractions must be positive and sum to ≤ 1: {ft_fracs}, {test_fracs}")
    tr, va, d1 = authors_random_split(len(train_val), ft_fracs, seed)
    easy, hard, d2 = authors_random_split(len(test), test_fracs, seed)
    if len(tr) == 0 or len(va) == 0:
        raise SplitError(f"{len(train_val)} train/val-species graphs give an empty FT train or val split")
    ft_train, ft_val, test_easy, test_hard = train_val[tr], train_val[va], test[easy], test[hard]

    gen = torch.Generator().manual_seed(partial_seed)
    part_tr = _torch_subset(ft_train, partial_frac, gen)
    part_va = _torch_subset(ft_val, partial_frac, gen)
    if len(part_tr) == 0 or len(part_va) == 0:
        raise SplitError(f"partial access ({partial_frac:.0%}) leaves MetaFT train or val empty")

    splits = PPISplits(
        train_val=_readonly(train_val), test=_readonly(test), ft_train=_readonly(ft_train), ft_val=_readonly(ft_val),
        test_easy=_readonly(test_easy), test_hard=_readonly(test_hard),
        meta_pt=_readonly(np.concatenate([train_val, test_easy])),
        metaft_train_partial=_readonly(part_tr), metaft_val_partial=_readonly(part_va),
        dropped=_readonly(np.concatenate([train_val[d1], test[d2]])), n_ft_tasks=n_ft_tasks, n_task_folds=n_task_folds,
    )
    validate(splits, len(sp))
    return splits


def validate(s: PPISplits, n_graphs: int) -> None:
    """Disjointness and coverage; raises SplitError naming the first violated invariant."""

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise SplitError(f"split invariant violated: {what}")

    allidx = np.concatenate([s.ft_train, s.ft_val, s.test_easy, s.test_hard, s.dropped])
    check(len(np.unique(allidx)) == len(allidx), "ft_train, ft_val, test_easy, test_hard, dropped overlap or repeat")
    check(np.array_equal(np.sort(allidx), np.arange(n_graphs)), "the parts do not cover every graph exactly once")
    tv = np.concatenate([s.ft_train, s.ft_val, s.dropped[np.isin(s.dropped, s.train_val)]])
    check(np.array_equal(np.sort(tv), np.sort(s.train_val)), "train_val ≠ ft_train ∪ ft_val ∪ its dropped graphs")
    te = np.concatenate([s.test_easy, s.test_hard, s.dropped[np.isin(s.dropped, s.test)]])
    check(np.array_equal(np.sort(te), np.sort(s.test)), "test (human) ≠ test_easy ∪ test_hard ∪ its dropped graphs")
    pt = np.concatenate([s.train_val, s.test_easy])
    check(np.array_equal(np.sort(s.meta_pt), np.sort(pt)), "meta_pt ≠ train_val ∪ test_easy")
    check(not np.isin(s.meta_pt, s.test_hard).any(), "meta_pt touches test_hard")
    partial_ok = np.isin(s.metaft_train_partial, s.ft_train).all() and np.isin(s.metaft_val_partial, s.ft_val).all()
    check(partial_ok and len(np.unique(s.metaft_train_partial)) == len(s.metaft_train_partial), "partial ⊄ full FT split")
    folds = np.concatenate(s.task_folds)
    check(np.array_equal(np.sort(folds), np.arange(s.n_ft_tasks)), "task folds do not partition the FT tasks")


def with_ft_budget(splits: PPISplits, budget: tuple[int, int] | None, seed: int = 42) -> PPISplits:
    """FT train/val cut to a label budget (MetaFT and final FT both use it); partial access halves it."""
    if budget is None:
        return splits
    n_train, n_val = budget
    if n_train > len(splits.ft_train) or n_val > len(splits.ft_val):
        raise ValueError(f"the MetaFT label budget {tuple(budget)} (train, val graphs: ppi.ft_budget, or ppi.grid.budgets for a column N=<n>) "
                         f"exceeds this dataset's FT pool ({len(splits.ft_train)}, {len(splits.ft_val)}); for synthetic data raise "
                         "ppi.data.generator.n_graphs")
    rng = np.random.default_rng(seed)
    tr, va = rng.permutation(splits.ft_train)[:n_train], rng.permutation(splits.ft_val)[:n_val]
    return dataclasses.replace(
        splits, ft_train=tr, ft_val=va,
        metaft_train_partial=rng.permutation(tr)[: max(1, n_train // 2)], metaft_val_partial=rng.permutation(va)[: max(1, n_val // 2)],
    )
