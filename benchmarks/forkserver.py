"""The fork server against plain processes: the wall time of a stage job's start, side by side in one run.

The job imports what a PPI fine-tuning job imports (``metapt.ppi.finetune``: torch, PyG, scipy) and builds one Adam
optimiser (which imports torch._dynamo), then exits: the start-up every stage job pays before its work. Each round
runs it once as its own process and once delegated to a fork server (``metapt.forkserver``), interleaved.

    python -m benchmarks.forkserver [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.protocol import interleaved_times, median
from metapt import forkserver

ROOT = Path(__file__).resolve().parents[1]
JOB = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from metapt.forkserver import delegate
delegate()
import torch
import metapt.ppi.finetune  # noqa: F401
torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
"""


def bench(rounds: int = 7) -> dict[str, float]:
    """Median seconds per job start, alone and through the server, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "job.py"
        script.write_text(JOB)
        with forkserver.running(ROOT) as env:
            path = Path(env[forkserver.ENV])
            for _ in range(600):
                if path.exists():
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # bound, then listening
            plain = {k: v for k, v in env.items() if k != forkserver.ENV}
            run = lambda e: subprocess.run([sys.executable, str(script)], env=e, check=True)  # noqa: E731
            times = interleaved_times({"own process": lambda: run(plain), "fork server": lambda: run(env)}, rounds, warmup=1)
    own, warm = median(times["own process"]), median(times["fork server"])
    ratios = [a / b for a, b in zip(times["own process"], times["fork server"])]
    return {"own_process_s": own, "fork_server_s": warm, "ratio": median(ratios)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    r = bench(ap.parse_args().rounds)
    print(f"job start, {os.cpu_count()} CPUs: own process {r['own_process_s']:.2f} s, through the fork server {r['fork_server_s']:.2f} s; "
          f"own ÷ fork server = {r['ratio']:.1f}× (median of per-round ratios)")


if __name__ == "__main__":
    main()
