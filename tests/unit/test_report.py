"""The report stage on small synthetic evaluation files (no pipeline run)."""

import csv
import json
import math
import runpy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as sps  # noqa: E402

from metapt import report
from metapt.io import atomic_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
N_TASKS = 30
KINDS = ["helpful"] * 10 + ["noise"] * 10 + ["distractor"] * 10

# PPI headline values per (setting, method): seed -> value. partial/heldout ran 3 seeds, full 5.
PPI = {
    ("full", "no_pt"): [0.60, 0.61, 0.62, 0.60, 0.59],
    ("full", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("full", "cotrain"): [0.74, 0.73, 0.75, 0.76, 0.74],  # best baseline (by mean)
    ("full", "cotrain_pcgrad"): [0.78, 0.60, 0.70, 0.71, 0.72],  # best single seed, lower mean
    ("full", "meta"): [0.77, 0.76, 0.79, 0.79, 0.77],
    ("full", "oracle"): [0.90, 0.91, 0.92, 0.90, 0.91],  # upper bound: never the baseline
    ("partial", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("partial", "cotrain"): [0.71, 0.70, 0.72],
    ("partial", "meta"): [0.70, 0.69, float("nan")],  # a diverged seed
    ("heldout", "uniform"): [0.70, 0.72, 0.71, 0.69, 0.70],
    ("heldout", "meta"): [0.71, 0.73, 0.70],  # 3 seeds against uniform's 5
}
ECG = {
    ("N=100", "no_pt"): [0.60, 0.62, 0.61],
    ("N=100", "simclr"): [0.70, 0.71, 0.72],
    ("N=100", "meta_simclr"): [0.72, 0.73, 0.73],
    ("N=25", "no_pt"): [0.55, 0.56, 0.54],
    ("N=25", "simclr"): [0.62, 0.61, 0.63],
    ("N=25", "meta_simclr"): [0.62, 0.62, 0.62],
}


def _rows(domain, table, metric, mode):
    return [{"domain": domain, "setting": s, "method": m, "seed": seed, "mode": mode, "metric": metric, "value": v,
             "n_ft_seeds": 2, "pt_run": f"results/{domain}/pretrain/{m}-{s}-s{seed}", "ft_run": f"results/{domain}/finetune/{m}-{s}-s{seed}"}
            for (s, m), vals in table.items() for seed, v in enumerate(vals)]


def _ppi_eval(root: Path) -> dict:
    rng = np.random.default_rng(0)
    (root / "art").mkdir(parents=True, exist_ok=True)
    (root / "truth.json").write_text(json.dumps({"pt_kind": KINDS, "helpful_mask": [k == "helpful" for k in KINDS],
                                                 "helpfulness": [1.0 if k == "helpful" else 0.0 for k in KINDS]}))
    pretrain = []
    for seed in range(5):
        lam = np.cumsum(rng.normal(0, 0.1, (6, N_TASKS)), axis=0).astype(np.float32)
        np.savez(root / f"art/phi{seed}.npz", steps=np.arange(6) * 10, phi=lam)
        np.save(root / f"art/w{seed}.npy", (2 / (1 + np.exp(-lam[-1]))).astype(np.float64))
        pretrain.append({"run": f"pt/meta-full-s{seed}", "method": "meta", "setting": "full", "seed": seed, "labels": None,
                         "pt_wall_s": 30.0, "pt_steps": 60, "hyper_steps": 6, "weights": f"art/w{seed}.npy",
                         "trajectory": f"art/phi{seed}.npz", "weights_vs_truth": {"weights_auc": 0.7},
                         "warp_std_trajectory": None, "trajectory_steps": None})
        pretrain.append({"run": f"pt/uniform-s{seed}", "method": "uniform", "setting": "full", "seed": seed, "labels": None,
                         "pt_wall_s": 10.0, "pt_steps": 60, "hyper_steps": 0, "weights": None, "trajectory": None,
                         "weights_vs_truth": None, "warp_std_trajectory": None, "trajectory_steps": None})
    rows = _rows("ppi", PPI, "test_hard_auroc", "full")
    rows += _rows("ppi", {k: [v + 0.05 for v in vals] for k, vals in PPI.items()}, "test_easy_auroc", "full")
    return {"domain": "ppi", "profile": "embedded", "source": "synthetic", "truth": "truth.json", "rows": rows, "pretrain": pretrain}


def _ecg_eval() -> dict:
    pretrain = [{"run": f"pt/{m}-{n}-s{s}", "method": m, "setting": n, "seed": s, "labels": None, "pt_wall_s": wall,
                 "pt_steps": 50, "hyper_steps": 5 if m == "meta_simclr" else 0, "weights": None, "trajectory": None,
                 "weights_vs_truth": None, "warp_std_trajectory": [0.1, 0.12, 0.15] if m == "meta_simclr" else None,
                 "trajectory_steps": [0, 25, 50] if m == "meta_simclr" else None}
                for m, wall in [("simclr", 4.0), ("meta_simclr", 10.0)] for n in ("N=25", "N=100") for s in range(3)]
    return {"domain": "ecg", "profile": "embedded", "source": "synthetic", "truth": None,
            "rows": _rows("ecg", ECG, "test_macro_auroc", "linear"), "pretrain": pretrain}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "ppi.json").write_text(json.dumps(_ppi_eval(root)))
    (root / "ecg.json").write_text(json.dumps(_ecg_eval()))
    summary = report.build_report(root / "ppi.json", root / "ecg.json", root / "out", root=root)
    return root, root / "out", summary


def _cell(summary, cid):
    return next(c for c in summary["cells"] if c["id"] == cid)


def test_paired_delta_is_the_mean_of_per_seed_differences_against_the_best_baseline(built):
    _, _, summary = built
    meta = _cell(summary, "ppi/full/meta/test_hard_auroc/full")
    assert meta["best_baseline"] == "cotrain"  # not cotrain_pcgrad (best single seed) nor oracle (upper bound)
    a, b = PPI[("full", "meta")], PPI[("full", "cotrain")]
    assert meta["delta_mean"] == pytest.approx(np.mean(np.subtract(a, b)), abs=1e-12)
    assert meta["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(np.subtract(a, b)), scale=sps.sem(np.subtract(a, b)))
    assert (meta["delta_ci_low"], meta["delta_ci_high"]) == pytest.approx((lo, hi))
    assert meta["mean"] == pytest.approx(np.mean(a)) and meta["std"] == pytest.approx(np.std(a, ddof=1)) and meta["n"] == 5


def test_fewer_meta_seeds_are_paired_on_the_common_seeds_only(built):
    _, _, summary = built
    meta = _cell(summary, "ppi/heldout/meta/test_hard_auroc/full")
    assert meta["best_baseline"] == "uniform" and meta["n_paired"] == 3 and meta["paired_seeds"] == [0, 1, 2]
    assert meta["delta_mean"] == pytest.approx(np.mean(np.subtract(PPI[("heldout", "meta")], PPI[("heldout", "uniform")][:3])))


def test_nan_values_are_reported_not_dropped(built):
    _, out, summary = built
    meta = _cell(summary, "ppi/partial/meta/test_hard_auroc/full")
    assert meta["values"][2] is None and meta["n_nan"] == 1 and meta["n"] == 2 and meta["seeds"] == [0, 1, 2]
    assert meta["mean"] == pytest.approx(0.695) and meta["n_paired"] == 2
    table = (out / "tables/ppi_test_hard_auroc_full.md").read_text()
    assert "(+1 NaN)" in table
    assert "ppi/partial/meta/test_hard_auroc/full" in (out / "README.md").read_text().split("## NaN values")[1]


def test_csv_has_one_line_per_cell(built):
    _, out, summary = built
    with open(out / "tables/ppi_test_hard_auroc_full.csv") as fh:
        rows = list(csv.DictReader(fh))
    expected = [c for c in summary["cells"] if c["id"].startswith("ppi/") and c["metric"] == "test_hard_auroc"]
    assert len(rows) == len(expected) == len(PPI)
    assert len({r["id"] for r in rows}) == len(rows)
    meta = next(r for r in rows if r["id"] == "ppi/full/meta/test_hard_auroc/full")
    assert float(meta["delta_mean"]) == pytest.approx(_cell(summary, meta["id"])["delta_mean"])
    assert next(r for r in rows if r["method"] == "uniform")["delta_mean"] == ""  # only meta cells are tested


def test_markdown_table_follows_the_paper_layout(built):
    _, out, _ = built
    lines = (out / "tables/ppi_test_hard_auroc_full.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert header == "| method | full | partial | heldout |"
    methods = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and line != header]
    assert methods == ["no_pt", "uniform", "cotrain", "cotrain_pcgrad", "meta", "oracle", "Δ meta − best baseline"]
    ecg = (out / "tables/ecg_test_macro_auroc_linear.md").read_text()
    assert "| method | N=25 | N=100 |" in ecg  # sorted by N, not as strings


def test_summary_json_round_trips_and_lists_runs(built):
    _, out, summary = built
    on_disk = json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert on_disk == summary
    assert summary["profile"] == "embedded" and set(summary["inputs"]) == {"ppi", "ecg"}
    cell = _cell(summary, "ecg/N=25/simclr/test_macro_auroc/linear")
    assert cell["runs"][1] == {"seed": 1, "pt_run": "results/ecg/pretrain/simclr-N=25-s1", "ft_run": "results/ecg/finetune/simclr-N=25-s1"}
    assert len({c["id"] for c in summary["cells"]}) == len(summary["cells"]) == 2 * len(PPI) + len(ECG)


def test_figures_exist_and_are_png(built):
    _, out, summary = built
    names = {Path(f["file"]).name for f in summary["figures"]}
    assert names == {"ppi_weight_trajectories.png", "ppi_weights_by_kind.png", "ppi_top_tasks.png",
                     "ecg_warp_std.png", "ecg_auroc_vs_n_linear.png", "pt_cost.png"}
    for f in summary["figures"]:
        data = (out / f["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert summary["pt_cost"]["ppi"]["ratio"] == pytest.approx(3.0) and summary["pt_cost"]["ecg"]["ratio"] == pytest.approx(2.5)


def test_readme_compares_with_the_paper_and_says_when_meta_loses(built):
    _, out, summary = built
    text = (out / "README.md").read_text()
    assert "not comparable to the paper" in text and "78.6" in text and "86.7" in text
    comp = {r["quantity"].split(":")[0]: r for r in summary["paper_comparison"]}
    assert summary["paper_comparison"][0]["ours"] == pytest.approx(100 * np.mean(PPI[("full", "meta")]))
    # ECG N=25: meta_simclr ties simclr's mean exactly, so it must be called out as not better.
    assert "`ecg/N=25/meta_simclr/test_macro_auroc/linear`: meta_simclr does NOT beat simclr" in text
    assert comp["ECG"]["cell"] == "ecg/N=100/meta_simclr/test_macro_auroc/linear"
    assert comp["ECG"]["ours"] == pytest.approx(100 * (np.mean(ECG[("N=100", "meta_simclr")]) - np.mean(ECG[("N=100", "simclr")])))


def test_verdict_wording():
    base = {"best_baseline": "uniform", "n_paired": 3}
    assert report.verdict({**base, "delta_mean": 0.02, "delta_ci_low": 0.01, "delta_ci_high": 0.03}).startswith("beats")
    assert "NOT" in report.verdict({**base, "delta_mean": 0.02, "delta_ci_low": -0.01, "delta_ci_high": 0.05})
    assert "NOT" in report.verdict({**base, "delta_mean": -0.01, "delta_ci_low": -0.02, "delta_ci_high": -0.001})
    assert "cannot tell" in report.verdict({**base, "delta_mean": 0.02, "delta_ci_low": None, "delta_ci_high": None})


def test_all_nan_meta_cell_is_kept_with_no_comparison():
    rows = _rows("ecg", {("N=25", "simclr"): [0.6, 0.7], ("N=25", "meta_simclr"): [float("nan")] * 2}, "test_macro_auroc", "linear")
    cells = {c["method"]: c for c in report.domain_cells({"domain": "ecg", "rows": rows})}
    meta = cells["meta_simclr"]
    assert meta["n"] == 0 and meta["n_nan"] == 2 and math.isnan(meta["mean"])
    assert meta["best_baseline"] == "simclr" and meta["n_paired"] == 0 and math.isnan(meta["delta_mean"])
    assert "no shared seeds" in report.format_delta(meta) and "(+2 NaN)" in report.format_cell(meta)


def test_duplicate_seed_rows_are_an_error():
    rows = _rows("ecg", {("N=25", "simclr"): [0.6]}, "test_macro_auroc", "linear")
    with pytest.raises(ValueError, match="two evaluation rows"):
        report.domain_cells({"domain": "ecg", "rows": rows + rows})


def test_missing_domain_and_artefacts_are_skipped(tmp_path):
    ev = _ppi_eval(tmp_path)
    ev["truth"] = "missing/truth.json"
    for r in ev["pretrain"]:
        r["trajectory"] = "missing/phi.npz"
    (tmp_path / "ppi.json").write_text(json.dumps(ev))
    summary = report.build_report(tmp_path / "ppi.json", tmp_path / "nope.json", tmp_path / "out", root=tmp_path)
    names = {Path(f["file"]).name for f in summary["figures"]}
    assert names == {"ppi_top_tasks.png", "pt_cost.png"}  # no truth: no by-kind figure; no trajectory: no (a)
    assert set(summary["inputs"]) == {"ppi"} and any("nope.json" in w for w in summary["warnings"])
    with pytest.raises(FileNotFoundError):
        report.build_report(tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out2", root=tmp_path)


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


def test_stage_cli_runs_from_the_repo_root(built, tmp_path, monkeypatch):
    """In-process (a subprocess would double the file's run time); the script's own sys.path line is what makes it importable."""
    root, _, _ = built
    out = tmp_path / "cli_out"
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["report.py", "--ppi", "nope.json", "--ecg", "ecg.json", "--out", str(out)])
    runpy.run_path(str(REPO / "stages/report.py"), run_name="__main__")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["inputs"]) == {"ecg"} and (out / "README.md").exists()
    assert not any(p.name.startswith(".cli_out") for p in tmp_path.iterdir())
    assert math.isclose(_cell(summary, "ecg/N=100/meta_simclr/test_macro_auroc/linear")["mean"], np.mean(ECG[("N=100", "meta_simclr")]))
