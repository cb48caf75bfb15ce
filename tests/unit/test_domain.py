"""The domain declarations: names and folders of runs, the grid a profile expands to, the records' one writer and reader."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from metapt import compare
from metapt.config import load_params
from metapt.domain import Run, domain, domains
from metapt.records import EvalRow, Evaluation, PhiTrajectory, PTSummary

ROOT = Path(__file__).resolve().parents[2]


def test_run_names_and_folders_are_the_pipelines():
    assert Run("ppi", "meta", 2, "partial").pretrain_dir == Path("results/ppi/pretrain/meta-partial-s2")
    assert Run("ecg", "meta_simclr", 0, labels=25).finetune_dir == Path("results/ecg/finetune/meta_simclr-N25-s0")
    assert Run("ecg", "no_pt", 3).pretrain_dir is None  # a method that does not pre-train has no PT folder


def test_the_grid_is_what_the_profile_declares():
    tiny = load_params(ROOT / "params.yaml").profiles["tiny"]
    ppi = [r.name for r in domain("ppi").runs(tiny)]
    assert ppi == ["no_pt-full-s0", "uniform-full-s0", "meta-full-s0", "meta-full-N150-s0", "task_selection-full-s0",
                   "task_selection-full-N150-s0", "meta-heldout-s0"]
    ecg = [r.name for r in domain("ecg").runs(tiny)]
    assert ecg == ["no_pt-s0", "simclr-s0", "meta_simclr-N10-s0"]


def test_learn_then_re_pt_reads_its_meta_run_and_the_graph_says_so():
    ppi = domain("ppi")
    run = Run("ppi", "task_selection", 3, "full", 2000)
    assert ppi.source(run) == Run("ppi", "meta", 3, "full", 2000)
    assert ppi.source(Run("ppi", "uniform", 3, "full")) is None
    assert ppi.method("task_selection").meta_learned and not ppi.method("task_selection").learns_phi
    assert "task_selection" not in ppi.grid_methods(sees_ft_data=True)  # only its own groups, which name the edge
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "results/ppi/pretrain/meta-full-N${item.labels}-s${item.seed}" in stages["pretrain_ppi_selection_budget"]["deps"]
    assert "results/ppi/pretrain/meta-full-s${item.seed}" in stages["pretrain_ppi_selection"]["deps"]


def test_grid_axes_accept_only_declared_methods_of_the_right_kind(tmp_path):
    from metapt.config import ParamsError

    text = (ROOT / "params.yaml").read_text().replace("access_methods: [cotrain, cotrain_pcgrad, meta]", "access_methods: [cotrain, uniform]", 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"access_methods\.1: Input should be 'cotrain', 'cotrain_pcgrad' or 'meta'"):
        load_params(tmp_path / "params.yaml")


def test_every_declared_stage_function_and_schema_resolves():
    from metapt.domain import resolve

    for d in domains():
        assert [m.name for m in d.methods][0] == "no_pt" and not d.method("no_pt").pretrains
        for kind, ref in d.code.items():
            assert callable(resolve(ref)), (d.name, kind)
        assert resolve(d.params_model)().model_dump()  # every section has defaults
        with pytest.raises(KeyError, match="declared"):
            d.method("nope")


def test_trajectory_record_round_trips_and_says_what_it_holds(tmp_path):
    t = PhiTrajectory(np.array([0, 5]), np.array([[1.0, 0.5], [1.2, 0.4]], np.float32), "warp", ("warp_std", "m_mean"))
    t.write(tmp_path / "phi.npz")
    back = PhiTrajectory.read(tmp_path / "phi.npz")
    assert back.quantity == "warp" and back.columns == ("warp_std", "m_mean")
    np.testing.assert_array_equal(back.column("warp_std"), np.float32([1.0, 1.2]))
    np.testing.assert_array_equal(back.steps, [0, 5])


def test_evaluation_record_round_trips(tmp_path):
    ev = Evaluation("ecg", "tiny", "synthetic", None,
                    [EvalRow("ecg", "N=20", "meta_simclr", "meta_simclr@10", 0, "linear", "test_macro_auroc", float("nan"), 1, "pt", "ft", 20, 10)],
                    [PTSummary("pt", "meta_simclr", "N=10", 0, 10, 12, 3, None, "pt/phi.npz", None)])
    ev.write(tmp_path / "e.json")
    back = Evaluation.read(tmp_path / "e.json")
    assert back.rows[0].row == "meta_simclr@10" and back.rows[0].learned_from == 10 and math.isnan(back.rows[0].value)
    assert back.pretrain == ev.pretrain


def test_compare_reports_each_changed_field(tmp_path):
    cell = {"id": "ppi/full/meta/test_hard_auroc/full", "mean": 0.7, "values": [0.7], "runs": []}
    a, b = {"cells": [cell]}, {"cells": [{**cell, "mean": 0.71}, {**cell, "id": "x"}]}
    assert compare.compare(a, a) == []
    assert compare.compare(a, b) == ["only in the second: x", "ppi/full/meta/test_hard_auroc/full: mean 0.7 != 0.71"]
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
