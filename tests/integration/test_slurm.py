"""The workflow on a real SLURM cluster: Debian's slurmctld + slurmd + munge on this machine
(tests/slurm/cluster.sh), the Snakemake SLURM executor plugin submitting real `sbatch` jobs through
`--workflow-profile profiles/slurm`, with the site knobs (partition, memory, cores, no accounting)
set in that profile as a site would.

The tiny pipeline, with a failing report job injected: the workflow must exit non-zero,
leave no report and no lock entry for it, and keep the finished jobs; the fixed rerun submits only
the report and gives the same scores as the local run. Needs root (to install and start the daemons);
skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.tiny import ROOT, copy_repo, run_results, sh


def cluster_jobs(repo: Path) -> int:
    """The tiny profile's jobs that go through sbatch, from the declarations: per domain preprocess,
    evaluate and each run's FT (and PT) job, then the report; acquire and ``all`` run on the head node."""
    from metapt.config import load_params
    from metapt.domain import domains

    tiny = load_params(repo / "params.yaml").profiles["tiny"]
    return 1 + sum(2 + sum(1 + (r.pretrain_dir is not None) for r in d.runs(tiny)) for d in domains())


def ft_jobs(repo: Path) -> int:
    """The tiny profile's FT jobs (one per declared run, every domain)."""
    from metapt.config import load_params
    from metapt.domain import domains

    tiny = load_params(repo / "params.yaml").profiles["tiny"]
    return sum(len(d.runs(tiny)) for d in domains())

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
pytestmark = pytest.mark.timeout(600)


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "SLURM test needs Linux"
    if os.geteuid() != 0:
        return "SLURM test needs root, to install and start slurmctld, slurmd and munged"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM test needs Debian's slurm-wlm packages or apt-get to install them"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    t0 = time.perf_counter()
    install = subprocess.run(["bash", CLUSTER, "install"], capture_output=True, text=True)
    if install.returncode != 0:
        pytest.skip(f"could not install slurm-wlm and munge with apt: {install.stderr.strip()[-500:]}")
    print(f"slurm install: {time.perf_counter() - t0:.0f} s")
    yield CLUSTER
    # Normally the EXIT trap has already stopped them; not if a timeout killed the test's shell.
    subprocess.run(["bash", CLUSTER, "stop"], capture_output=True)


def set_site_knobs(profile: Path) -> None:
    """What a site edits in profiles/slurm: its partition and account, job sizes, and (no slurmdbd here) squeue polling."""
    cfg = yaml.safe_load(profile.read_text())
    cfg["default-resources"].update({"slurm_partition": "debug", "slurm_account": "", "mem_mb": 2000, "cpus_per_task": 1})
    cfg["slurm-status-command"] = "squeue"
    cfg["slurm-init-seconds-before-status-checks"] = 2
    profile.write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_cluster_script_stops_the_daemons_when_its_command_fails(slurm):
    run = subprocess.run(["bash", slurm, "run", "bash", "-c", "srun hostname && exit 3"], capture_output=True, text=True)
    assert run.returncode == 3 and run.stdout.strip(), run.stderr
    assert subprocess.run(["bash", slurm, "alive"]).returncode == 1, "a daemon outlived the EXIT trap"


def test_tiny_pipeline_on_slurm_fails_cleanly_then_matches_the_local_run(slurm, tiny_build, tmp_path):
    repo = tmp_path / "repo"
    env = copy_repo(repo)
    set_site_knobs(repo / "profiles" / "slurm" / "config.yaml")
    report_lib = repo / "metapt" / "report" / "__init__.py"
    original = report_lib.read_text()
    report_lib.write_text(original + '\nraise RuntimeError("injected failure (tests/integration/test_slurm.py)")\n')

    workflow = f"{sys.executable} -m metapt.workflow -- --workflow-profile profiles/slurm"
    script = (f"timeout -k 15 400 {workflow} > first.log 2>&1; echo $? > first.rc; "
              f"cp .cache/logs/report.log first-report.log; cp dvc.lock first.lock; [ -e results/report ] && touch report-after-failure; cp {tmp_path / 'report.py'} metapt/report/__init__.py; "
              f"timeout -k 15 200 {workflow} > second.log 2>&1; echo $? > second.rc")
    (tmp_path / "report.py").write_text(original)
    t0 = time.perf_counter()
    run = subprocess.run(["bash", slurm, "run", "bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    first, second = (repo / "first.log").read_text(), (repo / "second.log").read_text()
    assert run.returncode == 0, run.stderr[-2000:]
    assert subprocess.run(["bash", slurm, "alive"]).returncode == 1, "a daemon outlived the EXIT trap"

    # The failure path: the SLURM job failed, the workflow said so, and nothing claims the report exists.
    assert (repo / "first.rc").read_text().strip() != "0", first[-3000:]
    assert not (repo / "report-after-failure").exists() and "  report:" not in (repo / "first.lock").read_text()
    assert "  evaluate_ppi:" in (repo / "first.lock").read_text()  # the jobs that finished were committed
    assert re.search(r"Error in rule report", first) and "injected failure" in (repo / "first-report.log").read_text()
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", first)
    assert len(submitted) == cluster_jobs(repo), first[-3000:]  # every job but acquire and `all` (head node) went through sbatch

    # The rerun, after the fix: only the report is submitted; the rest was kept, and matches the local run.
    assert (repo / "second.rc").read_text().strip() == "0", second[-3000:]
    assert re.findall(r"Job \d+ has been submitted with SLURM jobid \d+ \(log: \S+/rule_(\w+)/", second) == ["report"], second[-3000:]
    assert (repo / "results/report/summary.json").is_file() and "  report:" in (repo / "dvc.lock").read_text()
    slurm_runs = run_results(repo)
    assert len(slurm_runs) == ft_jobs(repo) and slurm_runs == tiny_build.runs
    assert sh(sys.executable, "-m", "dvc", "status", "--json", cwd=repo, env=env).stdout.strip() in ("{}", "")
    print(f"SLURM: {len(submitted) + 1} sbatch jobs, one failure injected and recovered, in {seconds:.0f} s")


def test_paper_profile_sends_gpu_stages_to_the_gpu_partition(slurm, tmp_path):
    """What a site's run would ask of SLURM (dry run): PT/FT with a GPU on `gpu_partition`, the rest on the default."""
    repo = tmp_path / "repo"
    env = copy_repo(repo)
    shutil.copy2(ROOT / "params.yaml", repo / "params.yaml")
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("active: *embedded", "active: *paper"))
    out = sh(sys.executable, "-m", "snakemake", "--dry-run", "--workflow-profile", "profiles/slurm", cwd=repo, env=env).stdout
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.M)
    by_rule = {name: dict(kv.split("=", 1) for kv in res.split(", ")) for name, res in jobs}
    gpu = {n for n, r in by_rule.items() if r.get("gpu") == "1"}
    assert gpu and all(n.startswith(("pretrain_", "finetune_")) for n in gpu)
    assert all(by_rule[n]["slurm_partition"] == "gpu" and by_rule[n]["cpus_per_gpu"] == "4" for n in gpu)
    assert {r["slurm_partition"] for n, r in by_rule.items() if n not in gpu} == {"cpu"}
    assert {"preprocess_ppi", "evaluate_ecg", "report"} <= set(by_rule) - gpu
