"""End to end on the tiny profile: one command builds everything, both tools agree on what is stale,
a changed FT param reruns exactly its dependants, a library edit stales exactly the stages whose code
it is, a second cold build gives the same output hashes, and the lineage of a report cell reaches
the raw data.

The repository is copied (tracked and untracked-but-not-ignored files) into a temporary folder with
its own git history, MLflow database and DVC cache, so the real checkout is never touched.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from metapt.domain import names
from tests.integration.tiny import dvc_changed, dvc_would_run, sh, snakemake_would_run

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def repo(tiny_build):
    return tiny_build.repo, tiny_build.env, tiny_build.seconds


def rule(stage: str) -> str:
    from metapt.workflow import rule_name

    return rule_name(stage)


def test_one_command_builds_the_report_and_records_lineage(repo):
    d, env, seconds = repo
    summary = json.loads((d / "results/report/summary.json").read_text())
    ids = {c["id"] for c in summary["cells"]}
    figures = {f["file"] for f in summary["figures"]}  # drawn from what the real PT jobs wrote
    assert {"figures/ppi_weight_trajectories.png", "figures/ecg_warp_std.png", "figures/ecg_auroc_vs_n_linear.png",
            "figures/digits_policy_magnitudes.png", "figures/digits_orientation_test_macro_auroc_vs_n_linear.png"} <= figures
    assert not summary["warnings"], summary["warnings"]
    assert {"ppi/full/meta/test_hard_auroc/full", "ecg/N=10/meta_simclr/test_macro_auroc/linear", "ecg/N=20/meta_simclr@10/test_macro_auroc/linear",
            "digits/N=20/meta_simclr/orientation_test_macro_auroc/linear", "digits/orientation_N=20/meta_simclr/rotation_log_change/pt"} <= ids
    readme = (d / "results/report/README.md").read_text()
    assert "## Planted invariances (digits)" in readme and "`digits/N=20/meta_simclr/orientation_test_macro_auroc/linear`" in readme
    lock = (d / "dvc.lock").read_text()
    for stage in ("acquire_ppi", "preprocess_ecg", "pretrain_ppi_access@meta-0", "finetune_ecg_meta@10-0", "report"):
        assert f"  {stage}:" in lock
    assert dvc_changed(d, env) == set(), "dvc status is not clean after a Snakemake run"
    assert snakemake_would_run(d, env) == set()
    print(f"cold tiny pipeline: {seconds:.0f} s")


def test_reproduce_prints_where_the_time_went(tiny_build):
    """The per-job-kind table at the end of reproduce: every job that ran, by kind, with the critical path."""
    import re

    out = tiny_build.stdout
    head = re.search(r"Job times of this run: (\d+) job\(s\), (\d+) job-s in (\d+) s wall on 2 core\(s\) .*critical path (\d+) s; "
                     r"PT/FT process start-up (\d+) s", out)
    assert head, out[-3000:]
    jobs, job_s, wall, critical = (int(head.group(i)) for i in range(1, 5))
    assert jobs == len(tiny_build.outs) and 0 < critical <= job_s and critical <= wall + 1
    rows = dict(re.findall(r"^\| (\w+) \| (\d+) \|", out, re.M))
    assert int(rows["pretrain_ppi_access"]) == 1 and int(rows["finetune_ecg_nopt"]) == 1 and sum(map(int, rows.values())) == jobs
    # every stage process recorded its peak memory (metapt.jobstats), and the bytes of its outputs were counted
    stats = {k: (float(mb), float(out_mb.replace(",", ""))) for k, mb, out_mb in
             re.findall(r"^\| (\w+) \| \d+ \| \d+ \| [^|]+ \| [^|]+ \| [^|]+ \| ([\d.]+) \| ([\d,.]+) \|$", out, re.M)}
    assert set(stats) == set(rows), out[-3000:]
    assert all(mb > 20 for mb, _ in stats.values()) and stats["acquire_ppi"][1] > 0  # the tiny PT outputs are < 0.05 MB: printed 0.0


def test_noop_rerun_does_nothing(repo):
    d, env, _ = repo
    t0 = time.perf_counter()
    out = sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=d, env=env)
    assert "Nothing to be done" in out.stdout + out.stderr
    print(f"no-op rerun: {time.perf_counter() - t0:.1f} s")


def test_fresh_clone_pulls_from_the_remote_and_reruns_nothing(repo, tmp_path):
    """Outputs are shared through a DVC remote (a local folder here; S3 on a site), not by copying."""
    d, env, _ = repo
    sh(sys.executable, "-m", "dvc", "remote", "add", "--default", "--force", "shared", tmp_path / "remote", cwd=d, env=env)
    sh(sys.executable, "-m", "dvc", "push", cwd=d, env=env)
    sh("git", "add", "dvc.lock", ".dvc/config", cwd=d, env=env)
    sh("git", "commit", "-qm", "results of the tiny pipeline", cwd=d, env=env)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", d, clone, cwd=tmp_path, env=env)
    env = {**env, "PYTHONPATH": str(clone), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'clone-mlflow.db'}"}
    t0 = time.perf_counter()
    run = sh(sys.executable, "-m", "metapt.workflow", "--pull", "--cores", "2", cwd=clone, env=env)
    out = run.stdout + run.stderr
    assert re.search(r"dvc pull: \d+ stage\(s\) up to date, 0 stale", out) and "Nothing to be done" in out, out[-3000:]
    assert not (clone / ".cache/logs").exists()  # no job ran
    assert (clone / "results/report/summary.json").read_bytes() == (d / "results/report/summary.json").read_bytes()
    assert dvc_changed(clone, env) == set()
    print(f"clone + dvc pull + workflow: 0 jobs rerun, {time.perf_counter() - t0:.1f} s")

    # A library edit made before the pull: the pulled outputs are newer than the edit, yet both tools
    # must see the stages that import it as stale (their outputs get the epoch as mtime).
    lib = clone / "metapt/ecg/augment_learned.py"
    lib.write_text(lib.read_text() + "\n# an edit\n")
    users = dvc_changed(clone, env)
    assert users and all("_ecg" in u for u in users)
    out = sh(sys.executable, "-m", "metapt.workflow", "--pull", "--dry-run", cwd=clone, env=env).stdout
    assert f"{len(users)} stale" in out
    assert snakemake_would_run(clone, env) == {rule(s) for s in dvc_would_run(clone, env)}


def test_changed_ft_param_reruns_exactly_its_dependants(repo):
    d, env, _ = repo
    params = d / "params.yaml"
    text = params.read_text()
    params.write_text(text.replace("full: {mode: full, lr: 0.001, epochs: 3, dropout", "full: {mode: full, lr: 0.002, epochs: 3, dropout", 1))
    lock = (d / "dvc.lock").read_text()
    ft_ppi = {s for s in re.findall(r"^  (finetune_ppi\S*):", lock, re.M)}
    # no_pt, uniform, meta (full), meta (N=150), meta (heldout), task selection (full and N=150)
    assert len(ft_ppi) == 7
    assert dvc_changed(d, env) == ft_ppi
    expected = ft_ppi | {"evaluate_ppi", "report"}
    assert dvc_would_run(d, env) == expected
    assert snakemake_would_run(d, env) == {rule(s) for s in expected}
    before = {p.name: p.stat().st_mtime for p in (d / ".cache/logs").iterdir()}
    run = sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=d, env=env)
    after = {p.name: p.stat().st_mtime for p in (d / ".cache/logs").iterdir()}
    reran = {n.removesuffix(".log") for n in after if after[n] != before.get(n)}
    assert reran == {rule(s) for s in expected}, run.stdout[-2000:]
    assert dvc_changed(d, env) == set()
    assert "lr: 0.002" in (d / "dvc.lock").read_text()


def _stages_in_lock(d, pattern: str) -> set[str]:
    return set(re.findall(rf"^  ({pattern}):", (d / "dvc.lock").read_text(), re.M))


EDITS = {  # file → (the stages it stales directly, as a regex over dvc.lock's stage names)
    "metapt/ecg/augment_learned.py": r"pretrain_ecg\S*",  # the learned warp: no PPI stage, no no-PT FT, not even the FT of ECG
    "metapt/download.py": r"acquire_\S+",  # the download half of the I/O: the acquire stages only
    "metapt/engine/hypergrad.py": r"pretrain_\S+",  # the hypergradient: PT only (plain baselines share the loop's module)
    "metapt/ecg/data.py": r"(?:acquire|preprocess|pretrain|finetune)_ecg\S*",  # under metapt/ecg/: no PPI stage
}


@pytest.mark.parametrize("path", sorted(EDITS))
def test_library_edit_stales_exactly_the_stages_whose_code_it_is(repo, path):
    d, env, _ = repo
    lib = d / path
    original, stat = lib.read_text(), lib.stat()
    lib.write_text(original + "\n# an edit\n")
    try:
        users = _stages_in_lock(d, EDITS[path])
        assert users and dvc_changed(d, env) == users
        downstream = dvc_would_run(d, env)
        assert snakemake_would_run(d, env) == {rule(s) for s in downstream}
        if "ecg" in path:
            assert not {s for s in downstream if "_ppi" in s}
        if path in ("metapt/ecg/augment_learned.py", "metapt/engine/hypergrad.py"):
            assert not {s for s in downstream if s.startswith(("acquire", "preprocess")) or "_nopt" in s}
        print(f"edit of {path}: {len(users)} stage(s) stale, {len(downstream)} to run: {sorted(users)}")
    finally:
        lib.write_text(original)  # undo, mtime included: neither tool has anything to do again
        os.utime(lib, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if path == sorted(EDITS)[-1]:
        assert dvc_changed(d, env) == set() and snakemake_would_run(d, env) == set()


def test_a_rerun_that_writes_the_same_bytes_stops_there(repo):
    """Early cutoff by content (metapt/cutoff.py): after an edit of the download code only the acquire
    stages compute; their outputs come out identical, so every job below restores its outputs from the
    DVC cache instead of recomputing, and nothing else is committed or published."""
    d, env, _ = repo
    lib = d / "metapt/download.py"
    original = lib.read_text()
    summary = (d / "results/report/summary.json").read_bytes()
    try:
        for text in (original + "\n# an edit\n", original):  # the edit, then its undo: each reruns only the acquire stages
            lib.write_text(text)
            before = {p.name: p.stat().st_mtime for p in (d / ".cache/logs").iterdir()}
            out = sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=d, env=env)
            logs = {p for p in (d / ".cache/logs").iterdir() if p.stat().st_mtime != before.get(p.name)}
            computed = {p.stem for p in logs if "up to date by content" not in p.read_text()}
            acquire = {f"acquire_{name}" for name in names()}  # every domain's acquire stage imports the download code
            assert computed == {rule(s) for s in acquire}, out.stdout[-2000:]
            assert len(logs) > 10 and f"dvc commit of {len(acquire)} stage(s) that ran" in out.stderr
            assert dvc_changed(d, env) == set() and snakemake_would_run(d, env) == set()
            assert (d / "results/report/summary.json").read_bytes() == summary
    finally:
        lib.write_text(original)


def test_outputs_rebuilt_by_dvc_repro_satisfy_snakemake(repo):
    """Either tool may build; the other then has nothing to do (params travel through dvc.lock)."""
    d, env, _ = repo
    params = d / "params.yaml"
    params.write_text(params.read_text().replace("linear: {mode: linear, lr: 0.01, epochs: 5, batch_size: 16}", "linear: {mode: linear, lr: 0.02, epochs: 5, batch_size: 16}", 1))
    ft_ecg = set(re.findall(r"^  (finetune_ecg\S*):", (d / "dvc.lock").read_text(), re.M))
    assert dvc_changed(d, env) == ft_ecg
    assert snakemake_would_run(d, env) == {rule(s) for s in ft_ecg | {"evaluate_ecg", "report"}}
    sh(sys.executable, "-m", "dvc", "repro", cwd=d, env=env)
    assert dvc_changed(d, env) == set()
    assert snakemake_would_run(d, env) == set()


def test_lineage_of_a_headline_cell_reaches_the_raw_data(repo):
    d, env, _ = repo
    out = sh(sys.executable, "stages/lineage.py", "ppi/full/meta/test_hard_auroc/full", cwd=d, env=env).stdout
    for stage in ("report", "evaluate_ppi", "finetune_ppi_access@meta-0", "pretrain_ppi_access@meta-0", "preprocess_ppi", "acquire_ppi"):
        assert stage in out, out
    assert re.search(r"out: data/ppi/raw  md5 [0-9a-f]{32}", out)
    assert re.search(r"mlflow run: [0-9a-f]{32}  commit: [0-9a-f]{40}", out)
    assert "param active.ppi.finetune" in out
    # a cell of a domain's own report section (the digits planted-truth check) traces back the same way
    out = sh(sys.executable, "stages/lineage.py", "digits/orientation_N=20/meta_simclr/rotation_log_change/pt", cwd=d, env=env).stdout
    for stage in ("report", "evaluate_digits", "pretrain_digits_meta@20-0", "preprocess_digits", "acquire_digits"):
        assert stage in out, out


def test_snakemake_html_report_holds_the_figures(repo):
    d, env, _ = repo
    sh(sys.executable, "-m", "snakemake", "--report", "report.html", cwd=d, env=env)
    html = (d / "report.html").read_text(errors="replace")
    assert (d / "report.html").stat().st_size > 100_000 and "ecg_auroc_vs_n_linear.png" in html


def test_a_shrunk_grid_leaves_neither_lock_entries_nor_outputs_behind(repo):
    """Stages a params edit removes from the graph leave dvc.lock and the results folders, as a cold run
    would never have written them (DVC keeps both); the evaluate stage reruns without them.

    Last in this module: it leaves the shared build without its digits meta runs (rebuilding them
    would cost the suite half a minute); the other modules compare against the snapshots TinyBuild took."""
    d, env, _ = repo
    params = d / "params.yaml"
    original = params.read_text()
    grid = "grid: {methods: [], tasks: [orientation], labels: [20], meta_labels: [20]}"
    assert grid in original
    try:
        params.write_text(original.replace(grid, grid.replace("meta_labels: [20]", "meta_labels: []"), 1))
        out = sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=d, env=env)
        assert "dropped 2 stage(s) no longer in the graph" in out.stderr
        assert not _stages_in_lock(d, r"\S*digits_meta\S*") and not (d / "results/digits/pretrain/meta_simclr-N20-s0").exists()
        assert "evaluate_digits" in _stages_in_lock(d, "evaluate_digits") and dvc_changed(d, env) == set() and snakemake_would_run(d, env) == set()
    finally:
        params.write_text(original)  # the graph is whole again; its meta runs are not rebuilt (this test is the module's last)
