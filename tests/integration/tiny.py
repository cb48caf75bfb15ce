"""The tiny pipeline (the `tiny` profile of params.yaml) in a throwaway copy of the repository: helpers
shared by the integration tests that build it locally, on SLURM, or from a DVC remote."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from metapt.config import switch_profile

ROOT = Path(__file__).resolve().parents[2]


def sh(*cmd, cwd, env, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def copy_repo(dst: Path) -> dict[str, str]:
    """Copy the checkout's tracked and untracked-but-not-ignored files (not its dvc.lock: the checkout's
    results are not this run's; symlinks as symlinks: the stages' code folders) into ``dst`` with the
    `tiny` profile active and a git history of its own, MLflow database beside it; returns the
    environment to run commands there with."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if ((ROOT / f).is_file() or (ROOT / f).is_symlink()) and f != "dvc.lock":
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f, follow_symlinks=False)
    switch_profile("tiny", dst / "params.yaml")
    env = {**os.environ, "PYTHONPATH": str(dst), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{dst.parent / 'mlflow.db'}", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "no_proxy": "*", "NO_PROXY": "*"}
    sh("git", "init", "-q", cwd=dst, env=env)
    sh("git", "add", "-A", cwd=dst, env=env)
    sh("git", "commit", "-qm", "copy", cwd=dst, env=env)
    return env


def run_results(repo: Path) -> dict[str, dict]:
    """Every FT run's scores (``finetune.json`` without wall times), keyed by output folder."""

    def strip(tree):
        if isinstance(tree, dict):
            return {k: strip(v) for k, v in tree.items() if "wall" not in k}
        return [strip(v) for v in tree] if isinstance(tree, list) else tree

    return {str(f.parent.relative_to(repo)): strip(json.loads(f.read_text())["results"]) for f in sorted(repo.glob("results/*/finetune/*/finetune.json"))}


def summary_cells(repo: Path) -> dict[str, list[float]]:
    """Every report cell's per-seed values, keyed by cell id."""
    return {c["id"]: c["values"] for c in json.loads((repo / "results/report/summary.json").read_text())["cells"]}


def lock_outs(repo: Path) -> dict[str, str]:
    """Every output's hash in the repository's dvc.lock."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in lock.values() for o in s.get("outs", [])}


@dataclass
class TinyBuild:
    repo: Path
    env: dict[str, str]
    seconds: float
    runs: dict[str, dict]  # run_results() right after the build, before any test changes params
    outs: dict[str, str]  # lock_outs() right after the build
    cells: dict[str, list[float]]  # summary_cells() right after the build
    stdout: str = ""  # what the one command printed


def dvc_changed(repo_dir, env) -> set[str]:
    return set(json.loads(sh(sys.executable, "-m", "dvc", "status", "--json", cwd=repo_dir, env=env).stdout or "{}"))


def dvc_would_run(repo_dir, env) -> set[str]:
    """``dvc repro --dry`` lists only directly changed stages; --force-downstream adds what they feed."""
    out = sh(sys.executable, "-m", "dvc", "repro", "--dry", "--force-downstream", cwd=repo_dir, env=env).stdout
    return set(re.findall(r"Running stage '([^']+)'", out))


def snakemake_would_run(repo_dir, env) -> set[str]:
    out = sh(sys.executable, "-m", "snakemake", "--cores", "1", "--dry-run", "--quiet", "rules", cwd=repo_dir, env=env).stdout
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", out, re.M)} - {"all", "total", "job", "count"}
