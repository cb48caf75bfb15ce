"""Every PPI method runs end to end on a tiny synthetic set and writes its metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metapt.ppi import synth
from metapt.ppi.graphs import collate_graphs
from metapt.ppi.pretrain import METHODS
from metapt.ppi.settings import PPIConfig
from metapt.ppi.splits import make_splits, species_ids, with_ft_budget
from metapt.ppi.trial import run_trial, summarise
from metapt.records import PhiTrajectory

TINY = {
    "model": {"layers": 2, "hidden": 16},
    "pretrain": {"batch_size": 16, "meta_batch_size": 16, "loop": {"epochs": 2, "warmup_epochs": 1, "hyper_every": 3, "pt_lr": 1e-3, "checkpoint_every": 0, "hypergrad": {"normalise": "rms"}}},
    "finetune": {"full": {"mode": "full", "lr": 1e-3, "epochs": 2, "dropout": 0.5}, "linear": {"mode": "linear", "lr": 1e-2, "epochs": 2}},
    "ft_seeds": [0],
    "ft_budget": [30, 20],
}


def test_all_methods_run_and_write_json(tmp_path):
    cfg = PPIConfig.model_validate(TINY)
    results = run_trial("discriminating", list(METHODS), [0], cfg, tmp_path, {"n_graphs": 240, "n_pt_tasks": 12}, progress=False)
    assert {r["method"] for r in results} == set(METHODS)
    for r in results:
        saved = json.loads((tmp_path / f"{r['method']}_seed0.json").read_text())
        for mode in ("full", "linear"):
            assert 0 <= saved["ft"][mode]["test_hard"] <= 1
    meta = next(r for r in results if r["method"] == "meta")
    assert meta["pt"]["hyper_steps"] > 0 and len(meta["pt"]["weights_vs_truth_per_epoch"]) == 2
    traj = PhiTrajectory.read(tmp_path / "meta_seed0_phi.npz")
    assert traj.quantity == "weights" and traj.values.shape[1] == 12
    assert next(r for r in results if r["method"] == "oracle")["weights"]["weights_auc"] == 1.0
    assert 0 <= next(r for r in results if r["method"] == "cotrain_pcgrad")["pt"]["grad_conflict_frac"] <= 1
    agnostic = next(r for r in results if r["method"] == "agnostic")
    assert agnostic["pt"]["hyper_steps"] > 0
    assert "| meta | full |" in summarise(results)
    from metapt.ppi.figures import weight_figure

    png = weight_figure(tmp_path, tmp_path / "weights.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_simplex_weights_keep_the_total_and_learn(tmp_path):
    """pretrain.weights: simplex (issue 13's estimator): meta-PT learns T·p with exponentiated gradient."""
    tree = {**TINY, "pretrain": {**TINY["pretrain"], "weights": "simplex", "loop": {**TINY["pretrain"]["loop"], "meta_lr": 0.1}}}
    results = run_trial("discriminating", ["meta"], [0], PPIConfig.model_validate(tree), tmp_path, {"n_graphs": 240, "n_pt_tasks": 12}, modes=["linear"], progress=False)
    w = PhiTrajectory.read(tmp_path / "meta_seed0_phi.npz").values
    assert results[0]["pt"]["hyper_steps"] > 0
    np.testing.assert_allclose(w.sum(axis=1), 12, rtol=1e-5)  # every snapshot on the scaled simplex
    assert (w > 0).all() and not np.allclose(w[-1], 1)


def test_heldout_access_evaluates_ten_tasks(tmp_path):
    cfg = PPIConfig.model_validate(TINY)
    results = run_trial("discriminating", ["meta"], [0], cfg, tmp_path, {"n_graphs": 240, "n_pt_tasks": 12}, access="heldout", fold=2, modes=["linear"], progress=False)
    per_task = results[0]["ft"]["linear"]["runs"][0]["test_per_task"]["test_hard"]
    assert len(per_task) == 10


def test_center_index_quirk_is_a_switch():
    graphs, _ = synth.generate(synth.preset("discriminating", n_graphs=8, n_pt_tasks=4), seed=0)
    fixed, quirk = collate_graphs(True)(graphs), collate_graphs(False)(graphs)
    assert torch.equal(fixed.center_node_idx - fixed.ptr[:-1], quirk.center_node_idx)
    assert all(int(fixed.center_node_idx[i]) - int(fixed.ptr[i]) == int(g.center_node_idx) for i, g in enumerate(graphs))


def test_ft_budget_subsamples_and_rejects_too_large():
    graphs, _ = synth.generate(synth.preset("discriminating", n_graphs=240, n_pt_tasks=4), seed=0)
    splits = make_splits(species_ids(graphs))
    cut = with_ft_budget(splits, (30, 20))
    assert len(cut.ft_train) == 30 and len(cut.ft_val) == 20 and set(cut.ft_train) <= set(splits.ft_train)
    assert len(cut.metaft_train_partial) == 15 and np.array_equal(cut.test_hard, splits.test_hard)
    with pytest.raises(ValueError, match=r"ppi.ft_budget, or ppi.grid.budgets .* exceeds this dataset's FT pool"):
        with_ft_budget(splits, (10_000, 20))


@pytest.mark.parametrize("path", ["configs/ppi_trial_discriminating.yaml", "configs/ppi_trial_weight_recovery.yaml", "configs/ppi_paper.yaml"])
def test_shipped_configs_validate(path):
    from pathlib import Path

    import yaml

    cfg = PPIConfig.model_validate(yaml.safe_load((Path(__file__).resolve().parents[2] / path).read_text()))
    assert cfg.pretrain.loop.warmup_epochs < cfg.pretrain.loop.epochs


def test_config_typo_names_the_key():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="hiden"):
        PPIConfig.model_validate({"model": {"hiden": 3}})
    with pytest.raises(ValidationError, match="'full'|'linear'"):
        PPIConfig.model_validate({"finetune": {"full": {"mode": "partial"}}})


def test_uniform_pt_probes_the_signal_ceiling_without_changing_its_weights(tmp_path):
    """pretrain.probe: the ceiling at the chosen epochs of uniform PT; the run's weights equal an unprobed run's,
    and a run killed after the probe resumes with the probe's results (the hook is journaled)."""
    from metapt.ppi.pretrain import pretrain

    graphs, truth = synth.generate(synth.preset("discriminating", n_graphs=240, n_pt_tasks=12), seed=0)
    splits = with_ft_budget(make_splits(species_ids(graphs)), (30, 20))
    loop = {**TINY["pretrain"]["loop"], "checkpoint_every": 3}
    probed = PPIConfig.model_validate({**TINY, "pretrain": {**TINY["pretrain"], "loop": loop, "probe": {"epochs": [1, 2], "bootstrap": 2}}})
    plain = PPIConfig.model_validate({**TINY, "pretrain": {**TINY["pretrain"], "loop": loop}})
    a = pretrain("uniform", graphs, splits, probed, 0, truth=truth, checkpoint_dir=tmp_path / "a")
    b = pretrain("uniform", graphs, splits, plain, 0, truth=truth)
    assert all(torch.equal(x, y) for x, y in zip(a.encoder.state_dict().values(), b.encoder.state_dict().values()))
    per_epoch = a.log["signal_ceiling_per_epoch"]
    assert [e["epoch"] for e in per_epoch] == [1, 2] and "signal_ceiling_per_epoch" not in b.log
    assert all(0 <= e["auc_through_head"] <= 1 and -1 <= e["stability_through_head"] <= 1 and e["n_metaft"] == [30, 20] for e in per_epoch)
    meta = pretrain("meta", graphs, splits, probed, 0, truth=truth)  # only the plain baseline is probed
    assert "signal_ceiling_per_epoch" not in meta.log
    # resume: the checkpoint dir holds the final state (and the journaled probe rows); a rerun reproduces them
    again = pretrain("uniform", graphs, splits, probed, 0, truth=truth, checkpoint_dir=tmp_path / "a")
    assert again.log["signal_ceiling_per_epoch"] == per_epoch


def test_probe_settings_are_checked():
    with pytest.raises(ValueError, match="at least 2 resamples"):
        PPIConfig.model_validate({**TINY, "pretrain": {**TINY["pretrain"], "probe": {"epochs": [1], "bootstrap": 1}}})
    with pytest.raises(ValueError, match="1-based"):
        PPIConfig.model_validate({**TINY, "pretrain": {**TINY["pretrain"], "probe": {"epochs": [0]}}})


def test_ceiling_map_scores_every_budget_from_one_uniform_run_per_seed():
    from metapt.ppi.ceiling_map import ceiling_map, table

    rows = ceiling_map(900, [0, 1], epochs=1, bootstrap=0)
    pools = [r for r in rows if r["pool"]]
    assert len(pools) == 2 and {tuple(r["budget"]) for r in rows} >= {(100, 100)} | {tuple(pools[0]["budget"])}
    assert all(0 <= r["auc_through_head"] <= 1 and 0 <= r["auc_fixed_head"] <= 1 for r in rows)
    assert "(whole pool)" in table(rows) and "| 900 | 100/100 |" in table(rows)


def test_the_probe_scores_every_budget_in_one_pass_as_it_would_one_at_a_time():
    """signal_ceilings: several MetaFT budgets share the PT pass; each equals its own signal_ceiling (the same numbers)."""
    from metapt.ppi.model import GIN
    from metapt.ppi.probe import signal_ceiling, signal_ceilings
    from metapt.ppi.problem import MultitaskPPI

    graphs, truth = synth.generate(synth.preset("discriminating", n_graphs=200, n_pt_tasks=16), seed=0)
    torch.manual_seed(0)
    problem = MultitaskPPI.full(GIN(2, 16, 0.2), 16, 40)
    full = make_splits(species_ids(graphs))
    metaft = {col: (s.ft_train, s.ft_val) for col, s in (("full", with_ft_budget(full, (30, 10))), ("N=90", with_ft_budget(full, (90, 18))))}
    both = signal_ceilings(problem, graphs, full.meta_pt, metaft, truth, bootstrap=2, seed=3, batch_size=64)
    for col, (tr, va) in metaft.items():
        one = signal_ceiling(problem, graphs, full.meta_pt, tr, va, truth, bootstrap=2, seed=3, batch_size=64)
        assert both[col]["n_metaft"] == [len(tr), len(va)]
        np.testing.assert_allclose(both[col]["scores_through_head"], one["scores_through_head"], rtol=1e-10, atol=1e-14)
        assert both[col]["auc_through_head"] == one["auc_through_head"] and both[col]["lam"] == one["lam"]
    assert both["full"]["scores_through_head"] != both["N=90"]["scores_through_head"]
    # the budgets are nested: with_ft_budget draws one permutation, so the larger MetaFT holds the smaller
    assert set(metaft["full"][0]) <= set(metaft["N=90"][0]) and set(metaft["full"][1]) <= set(metaft["N=90"][1])


def test_the_budget_axis_declares_its_columns_runs_and_ft_data():
    from metapt.config import load_params
    from metapt.ppi.domain import DOMAIN
    from metapt.ppi.finetune import task_sets
    from metapt.ppi.settings import PPIGrid

    tiny = load_params().profiles["tiny"]
    assert tiny.ppi.budgets() == {"full": (40, 20), "N=150": (150, 30)}  # val: a fifth of 150, never fewer than ft_budget's 20
    budget_runs = [r for r in DOMAIN.runs(tiny) if r.labels is not None]
    assert [r.name for r in budget_runs] == ["meta-full-N150-s0", "task_selection-full-N150-s0"] and budget_runs[0].pretrain_dir.name == "meta-full-N150-s0"
    assert tiny.ppi.budget(150) == (150, 30) and tiny.ppi.budget(None) == (40, 20)
    by_name = {r.name: r for r in DOMAIN.runs(tiny)}
    assert task_sets(tiny, budget_runs[0]) == {"N=150": ("full", (150, 30))}  # final FT on the FT data it meta-learned from
    assert task_sets(tiny, budget_runs[1]) == {"N=150": ("full", (150, 30))}
    assert task_sets(tiny, by_name["uniform-full-s0"]) == {"all": ("full", (40, 20)), "heldout": ("heldout", (40, 20)), "N=150": ("full", (150, 30))}
    assert task_sets(tiny, by_name["meta-full-s0"]) == {"all": ("full", (40, 20))}
    with pytest.raises(ValueError, match="must differ"):
        PPIGrid.model_validate({"budgets": [500, 500]})
    with pytest.raises(ValueError, match="budget_methods"):
        PPIGrid.model_validate({"budget_methods": ["uniform"]})


def test_task_selection_keeps_the_top_share_of_the_learned_weights():
    from metapt.engine.metaparams import FixedTaskWeights, SampledTasks
    from metapt.ppi.pretrain import _meta_for, top_k_mask
    from metapt.ppi.settings import PPIPretrainConfig

    learned = np.array([0.5, 1.8, 1.2, 1.8, 0.1, 0.9, 1.0, 1.5, 0.2, 0.3])
    np.testing.assert_array_equal(top_k_mask(learned, 0.3), [0, 1, 0, 1, 0, 0, 0, 1, 0, 0])  # ties by task index
    assert top_k_mask(learned, 0.01).sum() == 1  # never an empty PT
    with pytest.raises(ValueError, match="finite"):
        top_k_mask(np.array([1.0, np.nan]), 0.5)
    cols = np.arange(10)
    top = _meta_for("task_selection", 10, None, learned, cols, PPIPretrainConfig.model_validate({"selection": {"top_frac": 0.3}}))
    assert isinstance(top, FixedTaskWeights) and top.weights().tolist() == top_k_mask(learned, 0.3).tolist()
    sampled = _meta_for("task_selection", 10, None, learned, cols, PPIPretrainConfig.model_validate({"selection": {"rule": "sampled"}}))
    assert isinstance(sampled, SampledTasks)
    with pytest.raises(ValueError, match="learned by a 'meta' run"):
        _meta_for("task_selection", 10, None, None, cols, PPIPretrainConfig())


def test_meta_pt_runs_with_the_converged_head_objective(tmp_path):
    """hypergrad.ft_objective: converged_head (issue 13's probe objective as an engine option) on the GIN."""
    loop = {**TINY["pretrain"]["loop"], "hypergrad": {"normalise": "rms", "ft_objective": "converged_head"}}
    tree = {**TINY, "pretrain": {**TINY["pretrain"], "loop": loop}}
    results = run_trial("discriminating", ["meta"], [0], PPIConfig.model_validate(tree), tmp_path, {"n_graphs": 240, "n_pt_tasks": 12}, modes=["linear"], progress=False)
    w = PhiTrajectory.read(tmp_path / "meta_seed0_phi.npz").values
    assert results[0]["pt"]["hyper_steps"] > 0 and np.isfinite(w).all() and not np.allclose(w[-1], w[0])
