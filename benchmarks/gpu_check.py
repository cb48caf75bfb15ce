"""The GPU check: the hyper-step benchmark, the paper ETA and the bounded paper run (rehearsal profile) on CUDA,
into one results file. Sized for 8 minutes on one H200-class GPU.

    python -m benchmarks.gpu_check [--out gpu_check.json] [--budget 480] [--scale 0.1]
    python -m benchmarks.gpu_check --smoke      CPU, tiny sizes, the run as a dry run (what the test suite calls)

Phases run in order, each under its share of the budget. The results file is rewritten after every
phase, so a phase that runs out of time still leaves the figures of the others (and its output so far).
The bounded run takes a copy of this checkout (outside it: the checkout's results stay untouched),
builds the stand-ins there at ``--scale`` of the real counts (building them at full size takes ≈ 5 min of
one core; the run's model sizes are the paper's either way), serves them on 127.0.0.1:8765 and runs
``reproduce --profile rehearsal`` with up to ``--gpu-jobs`` jobs sharing the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY_IGNORE = shutil.ignore_patterns(".venv", "results", "data", ".cache", ".snakemake", "mlflow.db", "mlruns", "mlartifacts", "__pycache__", ".dvc/cache", ".dvc/tmp")


def _run(cmd: list[str], timeout: float, cwd: Path = ROOT, env: dict | None = None) -> dict:
    """Run a phase's command; rc 124 when it ran out of its time (the output so far is kept)."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=max(timeout, 1))
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = 124, (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), \
            (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    return {"cmd": " ".join(cmd), "rc": rc, "wall_s": round(time.perf_counter() - t0, 1), "stdout": out[-20000:], "stderr_tail": err[-3000:]}


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "python": platform.python_version(), "cuda": cuda,
            "device": torch.cuda.get_device_name() if cuda else f"{platform.machine()} CPU",
            "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
            "cpus": os.cpu_count()}


def rehearsal_copy(dest: Path) -> Path:
    """This checkout's files (not its outputs or environment) in ``dest``, as a git repository for DVC."""
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE, symlinks=True)
    if not (dest / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=gpu-check", "-c", "user.email=gpu-check@localhost", "commit", "-qm", "gpu check", "--allow-empty"],
                   cwd=dest, check=True)
    return dest


def bounded_run(work: Path, scale: float, timeout: float, smoke: bool, cores: int, gpu_jobs: int) -> dict:
    """Stand-ins at ``scale``, the loopback mirror, then ``reproduce --profile rehearsal`` in a copy of the checkout."""
    sys.path.insert(0, str(ROOT))
    from metapt import standin

    repo = rehearsal_copy(work / "repo")
    t0 = time.perf_counter()
    standin.build(work / "standins", scale=scale)
    built_s = time.perf_counter() - t0
    srv = None if smoke else standin.serve_in_thread(work / "standins", standin.DEFAULT_PORT)  # the profile's URLs name this port
    try:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "NO_PROXY": "127.0.0.1"}
        cmd = [sys.executable, "-m", "metapt.workflow", "--profile", "rehearsal", "--cores", str(cores)]
        cmd += ["--dry-run"] if smoke else ["--", "--resources", f"gpu={gpu_jobs}"]
        out = _run(cmd, timeout - built_s, cwd=repo, env=env)
    finally:
        if srv is not None:
            srv.shutdown()
    out["standins_s"] = round(built_s, 1)
    summary = repo / "results" / "report" / "summary.json"
    if summary.is_file():
        cells = json.loads(summary.read_text())["cells"]
        out["report_cells"] = len(cells)
        out["lineage_of_first_cell"] = _run([sys.executable, "stages/lineage.py", cells[0]["id"]], 60, cwd=repo, env=env)["stdout"][-4000:]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--budget", type=float, default=480, help="seconds for all phases together")
    ap.add_argument("--scale", type=float, default=0.1, help="stand-in size as a fraction of the real counts")
    ap.add_argument("--gpu-jobs", type=int, default=4, help="jobs sharing the GPU in the bounded run")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, the bounded run as a dry run")
    args = ap.parse_args(argv)
    t_end = time.perf_counter() + args.budget
    left = lambda share: share * (t_end - time.perf_counter())  # noqa: E731  (a phase's share of what is left)
    py = [sys.executable, "-m"]
    if args.smoke:
        hyper = py + ["benchmarks.hyperstep", "--sizes", "tiny", "--rounds", "1", "--wall-steps", "2", "--wall-repeats", "1", "--skip-memory", "--device", "cpu"]
        eta = py + ["benchmarks.throughput", "--sizes", "tiny", "--steps", "2", "--warmup", "0", "--ecg-labels", "10", "--device", "cpu"]
    else:
        hyper = py + ["benchmarks.hyperstep", "--sizes", "embedded", "paper", "--rounds", "5", "--wall-steps", "50", "--wall-repeats", "2", "--device", "cuda"]
        eta = py + ["benchmarks.throughput", "--sizes", "paper", "--steps", "20", "--ecg-labels", "10", "500", "--device", "cuda"]
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "smoke": args.smoke, "environment": environment()}

    def save() -> None:
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, args.out)

    save()
    if not args.smoke and not results["environment"]["cuda"]:
        results["error"] = "no CUDA device: run with --smoke on a CPU machine"
        save()
        sys.exit(results["error"])
    for name, cmd, share in (("hyperstep", hyper, 0.2), ("throughput", eta, 0.25)):
        print(f"gpu_check: {name} …", flush=True)
        results[name] = _run(cmd, left(share))
        save()
    print("gpu_check: bounded paper run …", flush=True)
    with tempfile.TemporaryDirectory(prefix="metapt-gpu-check-") as work:
        results["rehearsal"] = bounded_run(Path(work), 0.002 if args.smoke else args.scale, left(0.95), args.smoke, args.cores, args.gpu_jobs)
    results["total_s"] = round(args.budget - (t_end - time.perf_counter()), 1)
    save()
    codes = ", ".join(f"{k} rc {v['rc']}" for k, v in results.items() if isinstance(v, dict) and "rc" in v)
    print(f"gpu_check: wrote {args.out} ({codes})", flush=True)
    return results


if __name__ == "__main__":
    main()
