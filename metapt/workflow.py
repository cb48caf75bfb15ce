"""Run the pipeline: DVC says what is stale, Snakemake executes, the jobs that ran are committed.

    python -m metapt.workflow [--profile embedded|paper] [--cores N] [--dry-run] [-- extra snakemake args]

Snakemake reruns on changed inputs and on params it recorded itself; DVC also knows params and code
hashes of stages that ``dvc repro`` ran. Passing DVC's stale stages as ``--forcerun`` makes the two
agree whichever tool ran last. The Snakefile's ``onsuccess`` then ``dvc commit``s exactly the stages
that ran, so ``dvc.lock`` always describes what is on disk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from metapt.config import switch_profile

ROOT = Path(__file__).resolve().parents[1]


def rule_name(addressing: str) -> str:
    """The Snakemake rule of a DVC stage (same mapping as workflow/rules/common.smk)."""
    return "".join(c if c.isalnum() else "_" for c in addressing.replace("@", "__"))


def dvc_stale(cwd: Path = ROOT) -> list[str]:
    """Stages ``dvc status`` reports as changed (deps, params, outs or command), by DVC name."""
    out = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return sorted(json.loads(out or "{}"))


def snakemake_cmd(cores: int, stale: list[str], dry_run: bool = False, extra: list[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
    if stale:
        cmd += ["--forcerun", *(rule_name(s) for s in stale)]
    if dry_run:
        cmd += ["--dry-run", "--quiet", "rules"]
    return cmd + list(extra)


def reproduce(profile: str | None = None, cores: int = 2, dry_run: bool = False, extra: list[str] = (), cwd: Path = ROOT) -> int:
    t0 = time.perf_counter()
    if profile is not None and switch_profile(profile, cwd / "params.yaml"):
        print(f"params.yaml: active profile is now {profile}", flush=True)
    stale = dvc_stale(cwd)
    if stale:
        print(f"dvc status: {len(stale)} stage(s) changed: {', '.join(stale[:8])}{' …' if len(stale) > 8 else ''}", flush=True)
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
