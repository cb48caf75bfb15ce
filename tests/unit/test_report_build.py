"""The whole report (tables, CSV, summary.json, README, figures) from evaluation files written by the real writers."""

from __future__ import annotations

import csv
import json
import math
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metapt.io import atomic_dir, write_json
from metapt.records import Evaluation, PhiTrajectory, PTSummary
from metapt.report import build_report
from tests.unit.test_report_cells import ECG, PPI, eval_rows, evaluation

REPO = Path(__file__).resolve().parents[2]
N_TASKS = 30
KINDS = ["helpful"] * 10 + ["noise"] * 10 + ["distractor"] * 10
TRUTH = "data/ppi/processed/ground_truth.json"
CEILING_EPOCHS = (1, 4)  # the uniform runs' probed epochs (metapt.ppi.probe): 3 ceiling cells each


def write_ppi(root: Path, truth: str | None = TRUTH, trajectories: bool = True) -> Path:
    """results/ppi/evaluation.json under ``root``, its meta runs' weights and φ trajectories beside it."""
    rng = np.random.default_rng(0)
    write_json(root / TRUTH, {"pt_kind": KINDS, "helpful_mask": [k == "helpful" for k in KINDS],
                              "helpfulness": [1.0 if k == "helpful" else 0.0 for k in KINDS]})
    pretrain = []
    for seed in range(5):
        run = f"results/ppi/pretrain/meta-full-s{seed}"
        w = 2 / (1 + np.exp(-np.cumsum(rng.normal(0, 0.3, (6, N_TASKS)), axis=0)))
        if trajectories:
            PhiTrajectory(np.arange(6) * 10, w.astype(np.float32), "weights").write(root / run / "phi.npz")
        (root / run).mkdir(parents=True, exist_ok=True)
        np.save(root / run / "weights.npy", w[-1])
        pretrain.append(PTSummary(run, "meta", "full", seed, None, pt_steps=60, hyper_steps=6, weights=f"{run}/weights.npy",
                                  trajectory=f"{run}/phi.npz", weights_vs_truth={"weights_auc": 0.7}))
        ceiling = [{"epoch": e, "auc_fixed_head": 0.5 + 0.01 * seed, "auc_through_head": 0.6 + 0.02 * seed + 0.1 * (e == 4),
                    "stability_through_head": 0.2, "n_metaft": [100, 100]} for e in CEILING_EPOCHS]
        pretrain.append(PTSummary(f"results/ppi/pretrain/uniform-full-s{seed}", "uniform", "full", seed, None, pt_steps=60, hyper_steps=0,
                                  signal_ceiling=ceiling))
    rows = eval_rows("ppi", PPI, "test_hard_auroc", "full") + eval_rows("ppi", PPI, "test_easy_auroc", "full", shift=0.05)
    path = root / "results/ppi/evaluation.json"
    evaluation("ppi", rows, pretrain, truth).write(path)
    return path


def write_ecg(root: Path) -> Path:
    pretrain = [PTSummary(f"results/ecg/pretrain/simclr-s{s}", "simclr", None, s, None, pt_steps=50, hyper_steps=0) for s in range(3)]
    for n in (10, 25, 100):
        for s in range(3):
            run = f"results/ecg/pretrain/meta_simclr-N{n}-s{s}"
            PhiTrajectory(np.array([0, 25, 50]), np.array([[1600.0, 1.0], [1500.0 - n, 0.9], [1400.0 - 2 * n, 0.8]]), "warp",
                          ("warp_std", "m_mean")).write(root / run / "phi.npz")
            pretrain.append(PTSummary(run, "meta_simclr", f"N={n}", s, n, pt_steps=50, hyper_steps=5, trajectory=f"{run}/phi.npz"))
    path = root / "results/ecg/evaluation.json"
    evaluation("ecg", eval_rows("ecg", ECG, "test_macro_auroc", "linear"), pretrain).write(path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    inputs = {"ppi": write_ppi(root), "ecg": write_ecg(root)}
    summary = build_report(inputs, root / "out", root=root)
    return root, root / "out", summary


def _cell(summary, cid):
    return next(c for c in summary["cells"] if c["id"] == cid)


def test_the_evaluation_file_round_trips_through_its_reader(built):
    root, _, _ = built
    ev = Evaluation.read(root / "results/ecg/evaluation.json")
    assert ev.rows == eval_rows("ecg", ECG, "test_macro_auroc", "linear") and ev.pretrain[3].trajectory.endswith("phi.npz")


def test_summary_cells_hold_the_seed_statistics(built):
    _, _, summary = built
    meta = _cell(summary, "ppi/full/meta/test_hard_auroc/full")
    assert meta["best_baseline"] == "cotrain" and meta["mean"] == pytest.approx(np.mean(PPI[("full", "meta")]))
    nan = _cell(summary, "ppi/partial/meta/test_hard_auroc/full")
    assert nan["values"][2] is None and nan["n_nan"] == 1  # strict JSON: NaN is null
    easy = _cell(summary, "ppi/full/meta/test_easy_auroc/full")
    assert easy["mean"] == pytest.approx(np.mean(PPI[("full", "meta")]) + 0.05)
    cell = _cell(summary, "ecg/N=25/simclr/test_macro_auroc/linear")
    assert cell["runs"][1] == {"seed": 1, "pt_run": "results/ecg/pretrain/simclr-N=25-s1", "ft_run": "results/ecg/finetune/simclr-N=25-s1"}
    assert _cell(summary, "ecg/N=100/meta_simclr@10/test_macro_auroc/linear")["method"] == "meta_simclr@10"
    assert len({c["id"] for c in summary["cells"]}) == len(summary["cells"]) == 2 * len(PPI) + len(ECG) + 3 * len(CEILING_EPOCHS) + 1  # + the weights AUC cell


def test_the_signal_ceiling_has_cells_with_lineage_and_a_verdict(built):
    _, out, summary = built
    c = _cell(summary, "ppi/full/uniform/ceiling_auc_through_head/epoch4")
    assert c["mean"] == pytest.approx(0.7 + 0.02 * 2) and c["n"] == 5 and c["ci_low"] > 0.5
    assert c["runs"][0] == {"seed": 0, "pt_run": "results/ppi/pretrain/uniform-full-s0", "ft_run": "results/ppi/pretrain/uniform-full-s0"}
    assert _cell(summary, "ppi/full/uniform/ceiling_stability_through_head/epoch1")["mean"] == pytest.approx(0.2)
    readme = (out / "README.md").read_text()
    assert "MetaFT label budget and the signal ceiling (PPI)" in readme
    assert "MetaFT 100/100: meta helps (Δ vs uniform +0.0720, p = 0.002, closing 35 % of the gap" in readme and "the signal exists (through-head ceiling AUC 0.740" in readme


def test_summary_json_is_strict_and_deterministic(built, tmp_path):
    root, out, summary = built
    text = (out / "summary.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}")) == summary
    assert summary["profile"] == "embedded" and summary["inputs"] == {"ppi": "results/ppi/evaluation.json", "ecg": "results/ecg/evaluation.json"}
    assert summary["domains"]["ppi"]["truth"] == TRUTH
    again = build_report({"ppi": root / "results/ppi/evaluation.json", "ecg": root / "results/ecg/evaluation.json"}, tmp_path / "again", root=root)
    assert (tmp_path / "again/summary.json").read_text() == text and again == summary  # no wall time, host or out-dir in it

    def keys_and_strings(x):
        if isinstance(x, dict):
            return [s for k, v in x.items() for s in [f"key:{k}", *keys_and_strings(v)]]
        return [s for v in x for s in keys_and_strings(v)] if isinstance(x, list) else [x] if isinstance(x, str) else []

    found = keys_and_strings(summary)
    assert not [s for s in found if s.startswith("/") or str(root) in s or (s.startswith("key:") and "wall" in s)]


def test_csv_has_one_line_per_cell(built):
    _, out, summary = built
    with open(out / "tables/ppi_test_hard_auroc_full.csv") as fh:
        rows = list(csv.DictReader(fh))
    expected = [c for c in summary["cells"] if c["id"].startswith("ppi/") and c["metric"] == "test_hard_auroc"]
    assert len(rows) == len(expected) == len(PPI) and len({r["id"] for r in rows}) == len(rows)
    meta = next(r for r in rows if r["id"] == "ppi/full/meta/test_hard_auroc/full")
    assert float(meta["delta_mean"]) == pytest.approx(_cell(summary, meta["id"])["delta_mean"]) and meta["seeds"] == "0 1 2 3 4"
    assert next(r for r in rows if r["method"] == "uniform")["delta_mean"] == ""  # only φ-learning rows are tested
    assert next(r for r in rows if r["id"] == "ppi/partial/meta/test_hard_auroc/full")["n_nan"] == "1"


def test_markdown_table_follows_the_paper_layout(built):
    _, out, summary = built
    lines = (out / "tables/ppi_test_hard_auroc_full.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert header == "| method | full | partial | heldout |"
    methods = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and line != header]
    assert methods == ["no_pt", "uniform", "cotrain", "cotrain_pcgrad", "meta", "oracle", "Δ meta − best baseline"]
    meta_row = next(line for line in lines if line.startswith("| meta |"))
    full, partial, heldout = meta_row.split("|")[2:5]
    assert full.strip().startswith("**0.776") and heldout.strip().startswith("**") and "**" not in partial  # oracle is never bold
    assert "(+1 NaN)" in partial  # the diverged seed is flagged
    ecg = (out / "tables/ecg_test_macro_auroc_linear.md").read_text()
    assert "| method | N=25 | N=100 |" in ecg  # by label budget, not as strings
    ecg_rows = [line.split("|")[1].strip() for line in ecg.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert ecg_rows == ["no_pt", "simclr", "meta_simclr", "meta_simclr@10", "Δ meta_simclr − best baseline", "Δ meta_simclr@10 − best baseline"]
    assert [t["md"] for t in summary["tables"]] == ["tables/ppi_test_hard_auroc_full.md", "tables/ppi_test_easy_auroc_full.md",
                                                    "tables/ecg_test_macro_auroc_linear.md"]
    assert [t["headline"] for t in summary["tables"]] == [True, False, True]


def test_readme_compares_with_the_paper_and_says_when_meta_loses(built):
    _, out, summary = built
    text = (out / "README.md").read_text()
    assert "not comparable to the paper" in text and "78.6" in text and "86.7" in text
    comp = summary["paper_comparison"]
    assert [r["paper"] for r in comp] == [78.6, 77.0, 86.7, 3.9, 1.9]  # every domain's levels, then the gains
    assert comp[0]["ours"] == pytest.approx(100 * np.mean(PPI[("full", "meta")])) and comp[0]["cell"] == "ppi/full/meta/test_hard_auroc/full"
    assert comp[1]["cell"] == "ppi/heldout/meta/test_hard_auroc/full"
    assert comp[2]["cell"] == "ecg/N=100/meta_simclr/test_macro_auroc/linear"  # largest N, the method's own row
    assert "`ecg/N=25/meta_simclr/test_macro_auroc/linear`: meta_simclr does NOT beat simclr" in text
    ecg_gain = comp[4]
    assert ecg_gain["cell"] == "ecg/N=100/meta_simclr/test_macro_auroc/linear"
    assert ecg_gain["ours"] == pytest.approx(100 * (np.mean(ECG[("N=100", "meta_simclr")]) - np.mean(ECG[("N=100", "simclr")])))
    assert "ppi/partial/meta/test_hard_auroc/full" in text.split("## NaN values")[1]
    assert "## Pre-training cost" in text and "`pt_wall_s`" in text


def test_figures_follow_what_the_records_hold(built):
    _, out, summary = built
    names = [Path(f["file"]).name for f in summary["figures"]]
    assert names == ["ppi_weight_trajectories.png", "ppi_weights_by_kind.png", "ppi_top_tasks.png",
                     "ecg_warp_std.png", "ecg_auroc_vs_n_linear.png", "pt_cost.png"]
    for f in summary["figures"]:
        data = (out / f["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert "MLflow" in summary["figures"][-1]["caption"] and not summary["warnings"]
    cost = summary["pt_cost"]
    assert cost["ppi"]["meta"][0] == {"method": "meta", "plain": "uniform", "hyper_steps_per_pt_step": pytest.approx(0.1), "pt_steps_vs_plain": 1.0}
    assert cost["ecg"]["methods"]["meta_simclr"]["n_runs"] == 9 and cost["ecg"]["meta"][0]["plain"] == "simclr"


def test_missing_domain_and_artefacts_are_skipped(tmp_path):
    path = write_ppi(tmp_path, truth="missing/truth.json", trajectories=False)
    summary = build_report({"ppi": path, "ecg": tmp_path / "nope.json"}, tmp_path / "out", root=tmp_path)
    names = {Path(f["file"]).name for f in summary["figures"]}
    assert names == {"ppi_top_tasks.png", "pt_cost.png"}  # no truth: no by-kind figure; no trajectory: no weight trajectories
    assert set(summary["inputs"]) == {"ppi"} and any("nope.json" in w for w in summary["warnings"])
    assert any("missing/truth.json" in w for w in summary["warnings"]) and any("phi.npz not found" in w for w in summary["warnings"])
    assert "## Warnings" in (tmp_path / "out/README.md").read_text()
    with pytest.raises(FileNotFoundError):
        build_report({"ppi": tmp_path / "a.json", "ecg": None}, tmp_path / "out2", root=tmp_path)
    with pytest.raises(ValueError, match="holds domain 'ppi'"):
        build_report({"ecg": path}, tmp_path / "out3", root=tmp_path)


def test_atomic_dir_replaces_on_success_and_keeps_the_old_report_on_failure(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["report"]
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["report"]


def test_stage_cli_reads_the_declared_domains_from_the_repo_root(built, tmp_path, monkeypatch):
    """In-process (a subprocess would double the run time); the script's own sys.path line is what makes it importable.
    ``--ppi`` overrides the PPI input; ECG's is its declared default, results/ecg/evaluation.json."""
    root, _, _ = built
    out = tmp_path / "cli_out"
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["report.py", "--ppi", "nope.json", "--out", str(out)])
    runpy.run_path(str(REPO / "stages/report.py"), run_name="__main__")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == {"ecg": "results/ecg/evaluation.json"} and (out / "README.md").exists()
    assert not any(p.name.startswith(".cli_out") for p in tmp_path.iterdir())
    assert math.isclose(_cell(summary, "ecg/N=100/meta_simclr/test_macro_auroc/linear")["mean"], np.mean(ECG[("N=100", "meta_simclr")]))


def test_the_report_imports_no_torch():
    code = ("import sys; import metapt.report, metapt.report.figures; from metapt.domain import domains; domains(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torch_geometric')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
