"""Run the pipeline: Snakemake executes what is stale, the jobs that ran are committed to DVC.

    python -m metapt.workflow [--profile embedded|paper] [--cores N] [--dry-run] [-- extra snakemake args]

Snakemake reruns on changed inputs (mtimes) and on params it recorded itself; stages whose params
in ``dvc.lock`` differ from ``params.yaml`` are also passed as ``--forcerun``, so the two tools agree
whichever ran last (``tests/integration/test_pipeline.py`` checks against ``dvc status``). The Snakefile's ``onsuccess`` then ``dvc commit``s exactly the stages
that ran, so ``dvc.lock`` always describes what is on disk.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from metapt.config import switch_profile



def rule_name(addressing: str) -> str:
    """The Snakemake rule of a DVC stage (same mapping as workflow/rules/common.smk)."""
    return "".join(c if c.isalnum() else "_" for c in addressing.replace("@", "__"))


def dvc_stale(cwd: Path | None = None) -> list[str]:
    """Stages ``dvc status`` reports as changed (deps, params, outs or command), by DVC name."""
    out = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return sorted(json.loads(out or "{}"))


def params_stale(cwd: Path | None = None) -> list[str]:
    """Stages whose params in ``dvc.lock`` differ from ``params.yaml`` now: the fast part of ``dvc status``.

    File and code changes reach Snakemake through mtimes, and params of jobs it ran through its own
    metadata; what it cannot see is a param change under outputs that DVC built (``dvc repro``,
    ``dvc checkout``). Reading two YAML files covers that in well under a second, where a full
    ``dvc status`` takes ~10 s over the embedded graph's 131 stages (it re-reads params.yaml per stage).
    """
    import yaml

    cwd = Path.cwd() if cwd is None else Path(cwd)
    lock_file = cwd / "dvc.lock"
    if not lock_file.exists():
        return []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    lock = yaml.load(lock_file.read_text(), Loader=loader).get("stages", {})
    current = yaml.load((cwd / "params.yaml").read_text(), Loader=loader)
    stale = []
    for name, entry in lock.items():
        for file, values in entry.get("params", {}).items():
            tree = current if file == "params.yaml" else yaml.load((cwd / file).read_text(), Loader=loader)
            if any(_lookup(tree, k) != v for k, v in values.items()):
                stale.append(name)
                break
    return sorted(stale)


def _lookup(tree, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return KeyError  # a sentinel no recorded value equals
        tree = tree[part]
    return tree


def scheduled(cwd: Path | None = None, forcerun: bool = True) -> dict[str, int]:
    """What Snakemake would run now (rule → jobs), with DVC's stale stages forced as ``reproduce`` does."""
    stale = params_stale(cwd) if forcerun else []
    out = subprocess.run(snakemake_cmd(1, stale, dry_run=True), cwd=cwd, capture_output=True, text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) not in ("total", "all", "count"):
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def snakemake_cmd(cores: int, stale: list[str], dry_run: bool = False, extra: list[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
    if stale:
        cmd += ["--forcerun", *(rule_name(s) for s in stale)]
    if dry_run:
        cmd += ["--dry-run", "--quiet", "rules"]
    return cmd + list(extra)


def reproduce(profile: str | None = None, cores: int = 2, dry_run: bool = False, extra: list[str] = (), cwd: Path | None = None) -> int:
    """Bring every output up to date in the repository at ``cwd`` (default: here); returns Snakemake's exit code."""
    t0 = time.perf_counter()
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if profile is not None and switch_profile(profile, cwd / "params.yaml"):
        print(f"params.yaml: active profile is now {profile}", flush=True)
    stale = params_stale(cwd)
    if stale:
        print(f"dvc.lock: params changed for {len(stale)} stage(s): {', '.join(stale[:8])}{' …' if len(stale) > 8 else ''}", flush=True)
    code = subprocess.run(snakemake_cmd(cores, stale, dry_run, extra), cwd=cwd).returncode
    if code == 0 and not dry_run:
        report = cwd / "results" / "report"
        print(f"\nDone in {time.perf_counter() - t0:.0f} s. Tables: {report / 'README.md'} and {report / 'tables'}/; "
              f"figures: {report / 'figures'}/; every cell: {report / 'summary.json'}.\n"
              f"Lineage of a cell: python stages/lineage.py <cell id>;  runs: mlflow ui --backend-store-uri sqlite:///mlflow.db", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=["embedded", "paper"], help="switch params.yaml's active profile first")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true", help="list the jobs that would run")
    ap.add_argument("extra", nargs="*", help="further snakemake arguments (after --)")
    args = ap.parse_args(argv)
    return reproduce(args.profile, args.cores, args.dry_run, args.extra)


if __name__ == "__main__":
    sys.exit(main())


def commit_stages(names: list[str], cwd: Path | None = None) -> list[str]:
    """``dvc commit`` of exactly these stages, through one DVC index.

    The CLI re-resolves ``dvc.yaml`` and rewrites ``dvc.lock`` once per target, which is quadratic in
    the number of stages (4+ minutes for the embedded run's 131); this saves them all, then writes
    each lock file once.
    """
    from itertools import groupby

    from dvc.repo import Repo

    wanted = set(names)
    with Repo(str(cwd or Path.cwd())) as repo, repo.lock:
        stages = [s for s in repo.index.stages if s.addressing in wanted]
        missing = wanted - {s.addressing for s in stages}
        if missing:
            raise KeyError(f"not stages of dvc.yaml: {sorted(missing)}")
        for stage in stages:
            stage.save()
            stage.commit()
        for dvcfile, group in groupby(sorted(stages, key=lambda s: s.dvcfile.path), key=lambda s: s.dvcfile):
            dvcfile.dump_stages(list(group), update_pipeline=False)
    return sorted(s.addressing for s in stages)
