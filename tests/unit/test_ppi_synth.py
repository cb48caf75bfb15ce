"""Synthetic PPI generator: real-data format, determinism, ground truth, learnable signal, on-disk round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from threadpoolctl import threadpool_limits
from torch_geometric.data import Batch

from metapt.ppi.graphs import EgoGraph, EgoGraphUnoffset
from metapt.ppi.synth import CHANNEL_PAIRS, DATA_FILE, PRESETS, SPECIES, TRUTH_FILE, SynthPPIConfig, generate, helpfulness, load_dataset, load_ground_truth, preset, write_dataset

TINY = dict(n_graphs=40, n_pt_tasks=20)


@pytest.fixture(scope="module", params=sorted(PRESETS))
def tiny(request):
    cfg = preset(request.param, **TINY)
    return cfg, *generate(cfg, seed=3)


@pytest.fixture(scope="module")
def disc600():
    """The discriminating preset at 600 graphs: enough for the edge-count probe, small enough for a unit test."""
    cfg = preset("discriminating", n_graphs=600, n_pt_tasks=60)
    return cfg, *generate(cfg, seed=0)


def labels(graphs, key):
    return torch.cat([g[key] for g in graphs]).numpy()


# ---------------------------------------------------------------- format


def test_format_matches_real_data(tiny):
    cfg, graphs, _ = tiny
    assert len(graphs) == cfg.n_graphs
    for g in graphs:
        assert type(g) is EgoGraph
        n, ei, ea = g.num_nodes, g.edge_index, g.edge_attr
        assert g.x.dtype == torch.float32 and g.x.shape == (n, 1) and bool((g.x == 1).all())
        assert ei.dtype == torch.int64 and ei.shape[0] == 2 and ei.shape[1] % 2 == 0
        assert ea.dtype == torch.float32 and ea.shape == (ei.shape[1], 9)
        assert torch.equal(ei[:, 1::2], ei[:, 0::2].flip(0)), "each undirected edge = two consecutive directed entries"
        assert torch.equal(ea[0::2], ea[1::2])
        assert bool((ea[:, 7:] == 0).all()), "self-loop and mask channels are 0 in the data"
        assert bool(((ea == 0) | (ea == 1)).all()) and bool((ea[:, :7].sum(1) >= 1).all())
        lo, hi = ei[:, 0::2].min(0).values, ei[:, 0::2].max(0).values
        assert bool((lo < hi).all()), "no self-loops"
        assert len(torch.unique(lo * n + hi)) == len(lo), "no duplicate undirected edges"
        assert int(ei.max()) < n
        assert g.species_id.dtype == torch.int64 and g.species_id.shape == (1,) and int(g.species_id) in SPECIES
        assert g.center_node_idx.dtype == torch.int64 and g.center_node_idx.shape == (1,)
        c = int(g.center_node_idx)
        assert 0 <= c < n and int((ei[0] == c).sum()) >= cfg.min_first_hop
        assert g.go_target_pretrain.dtype == torch.uint8 and g.go_target_pretrain.shape == (1, cfg.n_pt_tasks)
        assert g.go_target_downstream.dtype == torch.uint8 and g.go_target_downstream.shape == (1, 40)
        assert int(g.go_target_pretrain.max()) <= 1 and int(g.go_target_downstream.max()) <= 1
    assert len({int(g.center_node_idx) for g in graphs}) > 1, "shuffle_nodes: the centre is not always node 0"


def test_batching_offsets_center(tiny):
    _, graphs, _ = tiny
    batch = Batch.from_data_list(graphs[:4])
    local = torch.cat([g.center_node_idx for g in graphs[:4]])
    assert torch.equal(batch.center_node_idx, batch.ptr[:-1] + local)
    assert torch.equal(batch.batch[batch.center_node_idx], torch.arange(4)), "each centre lands in its own graph"
    assert batch.go_target_pretrain.shape == (4, graphs[0].go_target_pretrain.shape[1])
    parity = Batch.from_data_list([EgoGraphUnoffset(**g.to_dict()) for g in graphs[:4]])
    assert torch.equal(parity.center_node_idx, local), "paper-parity variant keeps the authors' quirk"


# ---------------------------------------------------------------- determinism


def test_same_seed_same_data_other_seed_differs():
    cfg = preset("discriminating", **TINY)
    (g1, t1), (g2, t2), (g3, _) = generate(cfg, 5), generate(cfg, 5), generate(cfg, 6)
    assert t1 == t2
    for a, b in zip(g1, g2):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a.keys())
    assert any(a.num_nodes != b.num_nodes or not torch.equal(a.edge_attr, b.edge_attr) for a, b in zip(g1, g3))


def test_pt_bank_size_leaves_graphs_and_ft_labels_alone():
    """Independent streams: sweeping T_pt must not change the graphs or the FT task."""
    (ga, ta), (gb, tb) = (generate(preset("discriminating", n_graphs=30, n_pt_tasks=t), 1) for t in (10, 50))
    assert ta["ft_support"] == tb["ft_support"] and ta["motif_channels"] == tb["motif_channels"]
    for a, b in zip(ga, gb):
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_attr, b.edge_attr)
        assert torch.equal(a.go_target_downstream, b.go_target_downstream)


# ---------------------------------------------------------------- ground truth


def test_ground_truth_consistent(tiny):
    cfg, _, gt = tiny
    T, rel = cfg.n_pt_tasks, set(range(cfg.n_relevant))
    kinds = gt["pt_kind"]
    for key in ("pt_kind", "pt_support", "pt_or", "pt_noise", "pt_source_ft", "helpfulness", "helpful_mask"):
        assert len(gt[key]) == T, key
    assert gt["helpful_mask"] == [k == "helpful" for k in kinds]
    assert kinds.count("helpful") == round(cfg.frac_helpful * T) and kinds.count("noise") == round(cfg.frac_noise * T)
    assert len(gt["ft_support"]) == cfg.n_ft_tasks
    assert all(set(f) <= rel and cfg.ft_arity[0] <= len(f) <= cfg.ft_arity[1] for f in gt["ft_support"])
    for k, s, o, h, src in zip(kinds, gt["pt_support"], gt["pt_or"], gt["helpfulness"], gt["pt_source_ft"]):
        if k == "helpful":
            assert s and set(s) <= rel and not (set(o) & rel) and h > 0
            if cfg.helpful_mode == "noisycopy":
                assert s == gt["ft_support"][src]
            elif cfg.helpful_mode == "graded":
                assert set(s) <= set(gt["ft_support"][src])
        elif k == "distractor":
            assert s and not (set(s) & rel) and not o and h == 0
        else:
            assert not s and not o and h == 0
    assert sorted(gt["prevalence"]) == sorted(map(str, SPECIES))
    prev = np.array(list(gt["prevalence"].values()))
    assert prev.shape == (len(SPECIES), cfg.n_factors)
    lo, hi = cfg.prevalence_relevant
    assert ((prev[:, : cfg.n_relevant] >= lo) & (prev[:, : cfg.n_relevant] <= hi)).all()
    pairs = [tuple(p) for p in gt["motif_channels"]]
    assert len(pairs) == cfg.n_factors and all(p in CHANNEL_PAIRS for p in pairs)
    if cfg.unique_motifs:
        assert len(set(pairs)) == cfg.n_factors
    json.dumps(gt)  # JSON-native as it is


def test_helpfulness_score():
    ft = [[0], [0, 1]]
    assert helpfulness([0], [], 0.0, ft) == pytest.approx((1 + 0.5) / 2)
    assert helpfulness([0], [9], 0.0, ft) == pytest.approx((0.5 + 1 / 3) / 2)  # an OR'd distractor dilutes it
    assert helpfulness([0], [], 0.1, ft) == pytest.approx(0.8 * 0.75)
    assert helpfulness([5], [], 0.0, ft) == 0 and helpfulness([], [], 0.0, ft) == 0


def test_task_labels_follow_their_kind(disc600):
    """A helpful (noisy) copy tracks the FT task it copies; distractors and noise do not track any FT task."""
    cfg, graphs, gt = disc600
    ypt, yft = labels(graphs, "go_target_pretrain").astype(float), labels(graphs, "go_target_downstream").astype(float)
    corr = np.nan_to_num(np.corrcoef(ypt.T, yft.T)[: cfg.n_pt_tasks, cfg.n_pt_tasks:])
    kinds = np.array(gt["pt_kind"])
    clean_copies = [t for t in np.flatnonzero(kinds == "helpful") if not gt["pt_or"][t]]
    assert clean_copies and min(corr[t, gt["pt_source_ft"][t]] for t in clean_copies) > 0.5
    for kind in ("distractor", "noise"):  # |corr| ~ 1/√600 ≈ 0.04 from sampling alone
        assert np.abs(corr[kinds == kind]).mean() < 0.06 and np.abs(corr[kinds == kind]).max() < 0.25, kind
    assert ypt[:, kinds == "noise"].mean() == pytest.approx(cfg.noise_rate, abs=0.01)
    assert 0.05 < yft.mean() < 0.6


def test_planted_signal_is_learnable(disc600):
    """Logistic regression on centre-incident channel (pair) counts reaches FT AUROC > 0.7 (mean over the 40 tasks)."""
    _, graphs, _ = disc600
    feats = []
    for g in graphs:
        cen = g.edge_attr[g.edge_index[0] == g.center_node_idx, :7].numpy()
        feats.append(np.concatenate([cen.sum(0), (cen.T @ cen)[np.triu_indices(7, 1)]]))
    x = np.array(feats)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = labels(graphs, "go_target_downstream")
    with threadpool_limits(1):  # threaded BLAS on tiny fits only oversubscribes a shared 2-core machine
        aucs = [roc_auc_score(c, cross_val_predict(LogisticRegression(max_iter=1000), x, c, cv=3, method="predict_proba")[:, 1])
                for c in y.T]
    assert np.mean(aucs) > 0.7


# ---------------------------------------------------------------- disk


def test_write_load_round_trip(tmp_path, tiny):
    _, graphs, gt = tiny
    write_dataset(graphs, gt, tmp_path / "synth")
    assert sorted(p.name for p in (tmp_path / "synth").iterdir()) == sorted([DATA_FILE, TRUTH_FILE]), "no temp files left"
    data_dict, slices = torch.load(tmp_path / "synth" / DATA_FILE, weights_only=True)
    assert isinstance(data_dict, dict) and set(slices) >= {"x", "edge_index", "go_target_pretrain"}
    back = load_dataset(tmp_path / "synth")
    assert len(back) == len(graphs)
    for a, b in zip(graphs, back):
        assert type(b) is EgoGraph and a.keys() == b.keys()
        for k in a.keys():
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert load_ground_truth(tmp_path / "synth") == gt
    assert all(type(g) is EgoGraphUnoffset for g in load_dataset(tmp_path / "synth", cls=EgoGraphUnoffset))


def test_single_graph_round_trip(tmp_path, tiny):
    _, graphs, gt = tiny
    write_dataset(graphs[:1], gt, tmp_path)
    (back,) = load_dataset(tmp_path)
    assert torch.equal(back.edge_index, graphs[0].edge_index)
    with pytest.raises(ValueError):
        write_dataset([], gt, tmp_path)


# ---------------------------------------------------------------- config


def test_presets_match_the_background():
    """The presets carry the settings of docs/background.md, "Synthetic PPI presets" (the default is `discriminating`)."""
    g9 = preset("discriminating")
    assert SynthPPIConfig() == g9
    assert (g9.n_factors, g9.n_relevant, g9.unique_motifs, g9.motif_size, g9.motif_p, g9.base_rate) == (20, 4, True, 3, 0.9, 0.2)
    assert (g9.prevalence_relevant, g9.prevalence_irrelevant, g9.ft_arity) == ((0.25, 0.5), (0.2, 0.5), (1, 2))
    assert (g9.helpful_mode, g9.p_or, g9.helpful_noise) == ("noisycopy", 0.3, (0.0, 0.1))
    assert (g9.frac_helpful, g9.frac_noise, g9.n_ft_tasks) == (0.2, 0.1, 40)
    wr = preset("weight_recovery")
    assert (wr.helpful_mode, wr.n_factors, wr.unique_motifs, wr.motif_size, wr.p_or) == ("copy", 16, False, 4, 0.0)
    cj = preset("conjunction")
    assert (cj.ft_arity, cj.helpful_mode) == ((2, 3), "graded")
    assert preset("discriminating", n_graphs=7).n_graphs == 7


@pytest.mark.parametrize("bad", [dict(nonsense=1), dict(ft_arity=(1, 5)), dict(n_factors=22), dict(frac_helpful=0.95),
                                 dict(prevalence_relevant=(0.5, 0.2)), dict(helpful_mode="subset"), dict(motif_p=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        SynthPPIConfig(**bad)


def test_unknown_preset_names_choices():
    with pytest.raises(ValueError, match="discriminating"):
        preset("g9")
