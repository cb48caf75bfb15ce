"""Nothing lost on a kill, on the tiny pipeline: real SIGKILLs, then the same command again.

Each case breaks a copy of the built tiny pipeline and runs the one command (``python -m
metapt.workflow``) twice. The first run is killed: a failpoint (``metapt/faults.py``) SIGKILLs a PT job
at a chosen point, or Snakemake itself after its ``dvc commit``, or the test SIGKILLs the whole
process group of a cold build. The second run is the same command. Then, against the uninterrupted
build: every output hash in ``dvc.lock`` and every report cell; the killed PT job's MLflow metric rows
and its per-epoch log; exactly one MLflow run per job; no temporary folder or resume state left;
``dvc status`` and ``snakemake -n`` clean. A full disk (a real tmpfs, where this machine lets the
test mount one) must fail with the path named and the previous output and checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.tiny import copy_repo, dvc_changed, lock_outs, sh, snakemake_would_run, summary_cells

pytestmark = pytest.mark.timeout(900)

STAGE, OUT = "pretrain_ppi_access@meta-0", "results/ppi/pretrain/meta-full-s0"  # a PT job with hyper-steps and a per-epoch log
PT_CMD = ("stages/pretrain.py", "ppi", "--method", "meta", "--setting", "full", "--seed", "0", "--quiet")
TIMING = ("job/", "pt_wall_s", "ft_wall_s")  # wall times and peak memory: the only metrics a rerun may change


# ---------------------------------------------------------------------------------------- helpers
def reproduce(d: Path, env: dict) -> subprocess.CompletedProcess:
    return sh(sys.executable, "-m", "metapt.workflow", "--cores", "2", cwd=d, env=env, check=False)


def forget(d: Path, stage: str, out: str) -> None:
    """Make one stage compute again: its output and its dvc.lock entry gone. Every other stage is still
    up to date by content, so its job restores its outputs from the DVC cache (``metapt/cutoff.py``)."""
    shutil.rmtree(d / out)
    lock = yaml.safe_load((d / "dvc.lock").read_text())
    del lock["stages"][stage]
    (d / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def leftovers(d: Path) -> list[str]:
    """Temporary or moved-aside folders and files of the atomic writers, and unfinished resume state."""
    temp = [p for top in ("results", "data", ".cache/tracking") for p in (d / top).rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]
    resume = [p for p in (d / ".cache/resume").glob("*/*")] if (d / ".cache/resume").is_dir() else []
    return sorted(str(p.relative_to(d)) for p in temp + resume)


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def job_runs(uri: str) -> dict[str, list]:
    """The active MLflow runs of stage jobs, by output."""
    c = client(uri)
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()], "tags.`metapt.stage` != 'pipeline'", max_results=5000)
    by_out: dict[str, list] = {}
    for r in runs:
        by_out.setdefault(r.data.tags["metapt.output"], []).append(r)
    return by_out


def pipeline_statuses(uri: str) -> list[str]:
    c = client(uri)
    return sorted(r.info.status for r in c.search_runs([e.experiment_id for e in c.search_experiments()], "tags.`metapt.stage` = 'pipeline'"))


def metric_rows(uri: str, run) -> dict[str, list[tuple[int, float]]]:
    c = client(uri)
    return {k: sorted((m.step, m.value) for m in c.get_metric_history(run.info.run_id, k))
            for k in run.data.metrics if not k.startswith(TIMING)}


def reference_rows(tiny_build, out: str) -> dict[str, list[tuple[int, float]]]:
    """The metric rows of the uninterrupted build's run of ``out`` (its first run: tests may add later ones)."""
    uri = tiny_build.env["MLFLOW_TRACKING_URI"]
    return metric_rows(uri, min(job_runs(uri)[out], key=lambda r: r.info.start_time))


def assert_as_uninterrupted(d: Path, env: dict, tiny_build) -> None:
    now = lock_outs(d)
    assert {p for p in now if now[p] != tiny_build.outs.get(p)} == set(), "outputs differ from the uninterrupted build"
    assert set(now) == set(tiny_build.outs)
    assert summary_cells(d) == tiny_build.cells
    assert leftovers(d) == []
    assert dvc_changed(d, env) == set() and snakemake_would_run(d, env) == set()


@pytest.fixture(scope="module")
def built(tiny_build, tmp_path_factory):
    """A copy of the built tiny pipeline (outputs, DVC cache, resume and tracking caches) to break; each
    case leaves it as the build left it, which the case asserts."""
    d = tmp_path_factory.mktemp("faults") / "repo"
    shutil.copytree(tiny_build.repo, d, symlinks=True)
    return d, {**tiny_build.env, "PYTHONPATH": str(d)}


# ---------------------------------------------------------------------------------------- a PT job killed
@pytest.mark.parametrize("point", ["pt.step@1", "checkpoint.saved@1", "hyper.step@1", "atomic_dir.written", "pretrain.renamed"],
                         ids=["before-first-checkpoint", "just-after-a-checkpoint", "inside-a-hyper-step",
                              "output-written-not-renamed", "after-rename-before-publish"])
def test_a_pt_job_killed_anywhere_resumes_with_every_log(built, tiny_build, tmp_path, point):
    d, env = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a store of this case's own: its runs are this case's
    env = {**env, "MLFLOW_TRACKING_URI": uri, "METAPT_FAULT": point, "METAPT_FAULT_ONCE": str(tmp_path / "killed")}
    forget(d, STAGE, OUT)
    first = reproduce(d, env)
    assert first.returncode != 0, first.stdout[-2000:]
    killed = (tmp_path / "killed").read_text()
    assert "stages/pretrain.py ppi --method meta --setting full" in killed, killed
    second = reproduce(d, env)  # the same command: the kill point is behind it (METAPT_FAULT_ONCE)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    assert_as_uninterrupted(d, env, tiny_build)
    log = json.loads((d / OUT / "pretrain.json").read_text())
    assert [e["epoch"] for e in log["weights_vs_truth_per_epoch"]] == [1, 2]
    runs = job_runs(uri)
    assert {o: len(r) for o, r in runs.items()} == {OUT: 1}, "one MLflow run for the one job that computed"
    rows, ref = metric_rows(uri, runs[OUT][0]), reference_rows(tiny_build, OUT)
    assert rows == ref, f"metric rows differ: {sorted(k for k in ref if rows.get(k) != ref[k])}"
    assert len(rows["pt/pt_loss"]) == log["pt_steps"]
    assert "RUNNING" not in pipeline_statuses(uri)
    _tally(f"PT job, {point}", rows, runs, d)


def test_a_stage_run_by_hand_killed_after_rename_publishes_once(built, tiny_build, tmp_path):
    """Outside the workflow (a stage run by hand, or by ``dvc repro``) a job publishes its own run: killed
    after its output is in place but before the publish, the same command resumes from the final
    checkpoint, rewrites the same bytes and publishes once; ``reproduce`` then computes nothing below
    it (same bytes: up to date by content) and publishes nothing more."""
    from metapt.tracking import content_hash

    d, env = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**env, "MLFLOW_TRACKING_URI": uri, "METAPT_FAULT": "pretrain.renamed", "METAPT_FAULT_ONCE": str(tmp_path / "killed")}
    before = content_hash(d / OUT)
    assert sh(sys.executable, *PT_CMD, cwd=d, env=env, check=False).returncode == -signal.SIGKILL
    assert content_hash(d / OUT) == before and job_runs(uri) == {}
    run = sh(sys.executable, *PT_CMD, cwd=d, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert content_hash(d / OUT) == before
    runs = job_runs(uri)
    assert {o: len(r) for o, r in runs.items()} == {OUT: 1}
    assert metric_rows(uri, runs[OUT][0]) == reference_rows(tiny_build, OUT)
    assert reproduce(d, env).returncode == 0
    assert {o: len(r) for o, r in job_runs(uri).items()} == {OUT: 1}
    assert_as_uninterrupted(d, env, tiny_build)
    _tally("stage by hand, pretrain.renamed", metric_rows(uri, runs[OUT][0]), job_runs(uri), d)


def test_reproduce_killed_between_commit_and_publish_publishes_on_the_next_run(built, tiny_build, tmp_path):
    d, env = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**env, "MLFLOW_TRACKING_URI": uri, "METAPT_FAULT": "workflow.committed", "METAPT_FAULT_ONCE": str(tmp_path / "killed"),
           "METAPT_FAULT_SCOPE": "group"}  # reproduce, Snakemake and all: nothing is left to publish it in this invocation
    forget(d, STAGE, OUT)
    first = subprocess.run([sys.executable, "-m", "metapt.workflow", "--cores", "2"], cwd=d, env=env, capture_output=True, start_new_session=True)
    assert first.returncode == -signal.SIGKILL and (tmp_path / "killed").exists()
    assert job_runs(uri) == {} and f"  {STAGE}:" in (d / "dvc.lock").read_text()  # committed, not published
    second = reproduce(d, env)
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr
    assert "1 pending MLflow run(s)" in second.stdout
    assert_as_uninterrupted(d, env, tiny_build)
    runs = job_runs(uri)
    assert {o: len(r) for o, r in runs.items()} == {OUT: 1}
    assert metric_rows(uri, runs[OUT][0]) == reference_rows(tiny_build, OUT)
    assert pipeline_statuses(uri) == ["KILLED"]  # the killed invocation's run is closed (the rerun had no job: no run of its own)
    assert reproduce(d, env).returncode == 0 and {o: len(r) for o, r in job_runs(uri).items()} == {OUT: 1}  # never twice
    _tally("reproduce (group), workflow.committed", metric_rows(uri, runs[OUT][0]), job_runs(uri), d)


def test_a_commit_killed_while_dvc_rewrites_dvc_lock_is_redone(built, tiny_build, tmp_path):
    """DVC rewrites dvc.lock in place. What a kill in the middle leaves: the lock cut short, the copy taken
    before the commit, the marker of the stage being committed. The same command puts the lock back and
    commits the stage again."""
    from metapt.workflow import LOCK_BACKUP, RAN_DIR, rule_name

    d, env = built
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    lock = (d / "dvc.lock").read_bytes()
    shutil.copy2(d / "dvc.lock", d / LOCK_BACKUP)
    (d / "dvc.lock").write_bytes(lock[: len(lock) // 2])
    (d / RAN_DIR).mkdir(exist_ok=True)
    (d / RAN_DIR / rule_name(STAGE)).write_text(STAGE)
    run = reproduce(d, env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "dvc.lock restored from before a dvc commit that was killed" in run.stderr
    assert "dvc commit of 1 stage(s) a killed run left" in run.stdout
    assert not (d / LOCK_BACKUP).exists() and not any((d / RAN_DIR).iterdir())
    assert_as_uninterrupted(d, env, tiny_build)
    print("\nFAULT | dvc.lock cut short by a kill during dvc commit | restored from the copy taken before the commit; 1 stage committed again")


# ---------------------------------------------------------------------------------------- the whole reproduce killed
def test_a_cold_build_killed_mid_run_resumes_to_the_uninterrupted_build(tiny_build, tmp_path):
    """SIGKILL of Snakemake and all its jobs while PT jobs are mid-run, then the same command: the
    outputs are those of the uninterrupted cold build (hash for hash, so this is also the check that
    two cold builds agree), and MLflow holds one run per job."""
    d = tmp_path / "repo"
    env = copy_repo(d)
    uri = env["MLFLOW_TRACKING_URI"]
    proc = subprocess.Popen([sys.executable, "-m", "metapt.workflow", "--cores", "2"], cwd=d, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    ran = lambda: len(list((d / ".cache/ran").glob("*"))) if (d / ".cache/ran").is_dir() else 0  # noqa: E731
    checkpoints = lambda: list((d / ".cache/resume").rglob("last.pt"))  # noqa: E731
    while time.time() < deadline and proc.poll() is None and not (ran() >= 5 and checkpoints()):
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    assert checkpoints(), "a PT job must be killed mid-run"
    missing = [p for p in tiny_build.outs if not (d / p).exists()]
    assert missing, "the kill must leave work to do"

    second = reproduce(d, env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "removed the lock that a killed Snakemake left" in second.stdout
    assert_as_uninterrupted(d, env, tiny_build)
    runs = job_runs(uri)
    assert {o: len(r) for o, r in runs.items()} == {o: 1 for o in job_runs(tiny_build.env["MLFLOW_TRACKING_URI"])}
    for out in [o for o in runs if "/pretrain/" in o]:
        assert metric_rows(uri, runs[out][0]) == reference_rows(tiny_build, out), out
    assert pipeline_statuses(uri) == ["FINISHED", "KILLED"]
    rows = {f"{o}:{k}": v for o in runs if "/pretrain/" in o for k, v in metric_rows(uri, runs[o][0]).items()}
    _tally(f"cold reproduce SIGKILLed, {len(missing)} of {len(tiny_build.outs)} outputs missing", rows, runs, d)


def _tally(case: str, rows: dict, runs: dict, d: Path) -> None:
    """One line of the table in docs/faults.md (run with ``-s``)."""
    print(f"\nFAULT | {case} | metric rows {sum(len(v) for v in rows.values())} (equal to the uninterrupted run's) | "
          f"MLflow runs {sum(len(r) for r in runs.values())} for {len(runs)} job(s) | leftovers {len(leftovers(d))}")


# ---------------------------------------------------------------------------------------- a full disk
def _mount_tmpfs(where: Path, size: int) -> None:
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"a full disk is simulated with a small tmpfs, which this machine does not let the test mount: {run.stderr.strip()}")


def _resize(where: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def _used(path: Path) -> int:
    """What the files under ``path`` take on a tmpfs (whole pages)."""
    return sum(-(-f.stat().st_size // 4096) * 4096 for f in path.rglob("*") if f.is_file()) + 4096 * (1 + sum(1 for p in path.rglob("*") if p.is_dir()))


def test_a_full_disk_names_the_path_and_keeps_the_output_and_the_checkpoint(built, tmp_path):
    """Out of space while writing a PT output (a tmpfs over ``results/ppi/pretrain`` with room for half
    a new output), then while writing a resume checkpoint (a tmpfs over ``.cache/resume`` with room for
    one and a half). Each fails naming the path; the previous output and checkpoint stay intact; with
    room again, the same command resumes and finishes."""
    from metapt.engine.checkpoint import load_checkpoint
    from metapt.tracking import content_hash

    d, env = built
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    pretrain_dir, out = d / "results/ppi/pretrain", d / OUT
    before, out_size = content_hash(out), _used(out)
    saved = tmp_path / "pretrain"
    shutil.copytree(pretrain_dir, saved, symlinks=True)
    _mount_tmpfs(pretrain_dir, 4 * _used(saved))
    try:
        shutil.copytree(saved, pretrain_dir, symlinks=True, dirs_exist_ok=True)
        _resize(pretrain_dir, shutil.disk_usage(pretrain_dir).used + out_size // 2)  # room for half a new output
        run = sh(sys.executable, *PT_CMD, cwd=d, env=env, check=False)
        assert run.returncode != 0
        assert f"no space left on the device writing {OUT}" in run.stderr and "the previous complete meta-full-s0/ is unchanged" in run.stderr, run.stderr[-2000:]
        assert content_hash(out) == before and [p.name for p in pretrain_dir.iterdir() if p.name.startswith(".")] == []
        print(f"\nFAULT | full disk writing the PT output | {run.stderr.strip().splitlines()[-1]}")
        [checkpoint] = (d / ".cache/resume/pretrain_ppi").glob("meta-full-s0-*/last.pt")
        state = load_checkpoint(checkpoint)
        _resize(pretrain_dir, 4 * _used(saved))
        again = sh(sys.executable, *PT_CMD, cwd=d, env=env, check=False)  # room again: resumes from the final checkpoint
        assert again.returncode == 0, again.stderr[-2000:]
        assert content_hash(out) == before and not checkpoint.exists()
        assert int(state["step"]) == json.loads((out / "pretrain.json").read_text())["pt_steps"]
    finally:
        subprocess.run(["umount", str(pretrain_dir)], check=True)

    resume = d / ".cache/resume"
    _mount_tmpfs(resume, int(1.5 * _checkpoint_bytes(state)))  # room for one checkpoint, not for a second beside it
    try:
        run = sh(sys.executable, *PT_CMD, cwd=d, env=env, check=False)
        assert run.returncode != 0
        [checkpoint] = resume.glob("pretrain_ppi/meta-full-s0-*/last.pt")
        assert f"no space left on the device writing .cache/resume/pretrain_ppi/{checkpoint.parent.name}/last.pt" in run.stderr, run.stderr[-2000:]
        kept = load_checkpoint(checkpoint)  # the last good one, whole
        print(f"\nFAULT | full disk writing a checkpoint | {run.stderr.strip().splitlines()[-1]} | kept step {kept['step']}")
        assert 0 < int(kept["step"]) < int(state["step"]) and sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.pt", "steps.jsonl"]
        assert content_hash(out) == before
    finally:
        shutil.rmtree(resume / "pretrain_ppi", ignore_errors=True)
        subprocess.run(["umount", str(resume)], check=True)
    assert leftovers(d) == []


def _checkpoint_bytes(state) -> int:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.tell()
