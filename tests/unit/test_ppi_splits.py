"""The paper's PPI splits: sizes, species, disjointness, seed-42 parity with the authors' code, folds, errors."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from metapt.ppi.splits import TEST_SPECIES, TRAIN_VAL_SPECIES, PPISplits, SplitError, make_splits, species_ids, validate
from metapt.ppi.synth import generate, preset

ALL = np.array(TRAIN_VAL_SPECIES + TEST_SPECIES)


@pytest.fixture(scope="module")
def species():
    return np.random.default_rng(0).choice(ALL, size=1003)


@pytest.fixture(scope="module")
def splits(species):
    return make_splits(species)


def authors(n, fracs, seed=42):
    """pretrain-gnns random_split, verbatim logic (frac_test = 0)."""
    random.seed(seed)
    idx = list(range(n))
    random.shuffle(idx)
    a = int(fracs[0] * n)
    return idx[:a], idx[a: a + int(fracs[1] * n)]


def test_species_split(species, splits):
    tv, te = np.flatnonzero(species != 9606), np.flatnonzero(species == 9606)
    assert np.array_equal(splits.train_val, tv) and np.array_equal(splits.test, te)
    assert set(species[splits.ft_train]) | set(species[splits.ft_val]) <= set(TRAIN_VAL_SPECIES)
    assert set(species[splits.test_easy]) == set(species[splits.test_hard]) == {9606}


def test_sizes_and_seed_42_parity_with_the_authors(species, splits):
    tv, te = np.flatnonzero(species != 9606), np.flatnonzero(species == 9606)
    tr, va = authors(len(tv), (0.85, 0.15))
    easy, hard = authors(len(te), (0.5, 0.5))
    assert np.array_equal(splits.ft_train, tv[tr]) and np.array_equal(splits.ft_val, tv[va])
    assert np.array_equal(splits.test_easy, te[easy]) and np.array_equal(splits.test_hard, te[hard])
    assert len(splits.ft_train) == int(0.85 * len(tv)) and len(splits.ft_val) == int(0.15 * len(tv))
    assert len(splits.test_easy) == len(splits.test_hard) == len(te) // 2
    kept = sum(map(len, (splits.ft_train, splits.ft_val, splits.test_easy, splits.test_hard)))
    assert len(splits.dropped) == len(species) - kept


def test_disjoint_and_covering(species, splits):
    parts = [splits.ft_train, splits.ft_val, splits.test_easy, splits.test_hard, splits.dropped]
    allidx = np.concatenate(parts)
    assert len(allidx) == len(species) and np.array_equal(np.sort(allidx), np.arange(len(species)))
    assert np.array_equal(splits.meta_pt, np.concatenate([splits.train_val, splits.test_easy])), "authors' combine order"
    assert not np.isin(splits.meta_pt, splits.test_hard).any()


def test_deterministic_and_seeded(species, splits):
    again = make_splits(species)
    assert all(np.array_equal(getattr(splits, f.name), getattr(again, f.name)) for f in dataclasses.fields(PPISplits)
               if isinstance(getattr(splits, f.name), np.ndarray))
    assert not np.array_equal(make_splits(species, seed=0).ft_train, splits.ft_train)


def test_partial_access_matches_the_authors_smallft(splits):
    def half(idx):
        return torch.utils.data.random_split(idx.tolist(), [len(idx) // 2, len(idx) - len(idx) // 2])[0]

    with torch.random.fork_rng():
        torch.manual_seed(0)  # the authors: torch.manual_seed(0), then random_split on FT train, then on FT val
        tr, va = half(splits.ft_train), half(splits.ft_val)
    assert splits.metaft_train_partial.tolist() == list(tr) and splits.metaft_val_partial.tolist() == list(va)
    assert np.isin(splits.metaft_train_partial, splits.ft_train).all() and np.isin(splits.metaft_val_partial, splits.ft_val).all()
    assert len(np.unique(splits.metaft_train_partial)) == len(splits.ft_train) // 2


def test_task_folds(splits):
    folds = splits.task_folds
    assert len(folds) == 4 and all(len(f) == 10 for f in folds)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(40))
    for f in range(4):
        held, meta = splits.heldout_tasks(f), splits.meta_tasks(f)
        assert np.array_equal(held, np.arange(10 * f, 10 * f + 10)), "the authors' get_subset_fold"
        assert len(meta) == 30 and not np.isin(meta, held).any()
    with pytest.raises(SplitError):
        splits.heldout_tasks(4)


def test_frozen_and_read_only(splits):
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.ft_train = np.arange(3)
    with pytest.raises(ValueError):
        splits.ft_train[0] = 0


@pytest.mark.parametrize("species, match", [
    ([3702] * 50 + [7227] * 50, "human"),
    ([3702] * 50 + [9606], "human"),
    ([3702] * 50 + [9606] * 10 + [1234], "1234"),
    ([3702] * 3 + [9606] * 10, "empty"),
])
def test_clear_errors(species, match):
    with pytest.raises(SplitError, match=match):
        make_splits(species)


def test_validate_catches_overlap(splits, species):
    broken = dataclasses.replace(splits, ft_val=np.concatenate([splits.ft_val, splits.ft_train[:1]]))
    with pytest.raises(SplitError, match="overlap"):
        validate(broken, len(species))


def test_on_generated_graphs():
    graphs, _ = generate(preset("discriminating", n_graphs=120, n_pt_tasks=5), seed=0)
    sp = species_ids(graphs)
    s = make_splits(sp)
    assert len(s.test) == int((sp == 9606).sum()) > 0
    assert all(int(graphs[i].species_id) == 9606 for i in s.test_easy)
