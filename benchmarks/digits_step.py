"""The digits PT step, side by side: SimCLR with the fixed policy against meta-SimCLR (the policy learned
by hypergradient), at the embedded and paper sizes of ``params.yaml``.

Usage: python -m benchmarks.digits_step [--device auto|cpu|cuda] [--steps 20] [--warmup 2] [--sizes embedded paper]

Trainers are built by the PT job's own code (``metapt.digits.pretrain.build_trainer``) on random
images of the profile's canvas, and timed by the shared protocol (``throughput.time_pt_steps``: the
real loop body at the trainer's hyper-step schedule). The ratio meta ÷ SimCLR is measured in the same
run, so it survives a noisy machine; the absolute times do not.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.protocol import print_table
from benchmarks.throughput import time_pt_steps
from metapt.config import load_params
from metapt.digits.pretrain import build_trainer
from metapt.digits.processed import TaskData


def random_task(cfg, n: int, seed: int = 0) -> TaskData:
    """A binary task of n random images on the profile's canvas (the step time does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    s = cfg.canvas.size
    x = rng.random((n, 1, s, s), dtype=np.float32)
    y = (rng.random((n, 1)) < 0.5).astype(np.float32)
    return TaskData(x, y, np.arange(n - n // 5), np.arange(n - n // 5, n))


def bench(size: str, device: torch.device, steps: int, warmup: int) -> list[list]:
    cfg = load_params().profiles[size].digits
    n_labels = max(cfg.grid.meta_labels or cfg.grid.labels)
    data = random_task(cfg, max(4 * cfg.pretrain.batch_size, 2 * n_labels))
    rows, base = [], None
    for method in ("simclr", "meta_simclr"):
        trainer = build_trainer(method, "orientation", data, n_labels, cfg, 0, device=device)
        r = time_pt_steps(trainer, steps, warmup, device)
        base = base or r["s_per_step"]
        b = cfg.pretrain.batch_size
        rows.append([size, method, b, 1e3 * r["s_per_step"], 1e3 * r["normal_s"], "" if not r["n_hyper"] else 1e3 * r["hyper_s"],
                     r["s_per_step"] / base, f"{2 * b / r['s_per_step']:.0f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["embedded", "paper"], choices=["tiny", "embedded", "paper"])
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    rows = [row for size in args.sizes for row in bench(size, device, args.steps, args.warmup)]
    print_table(f"digits PT step on {device} ({torch.get_num_threads()} threads; meta: the profile's hyper_every)",
                ["size", "method", "batch", "ms/step (schedule avg)", "plain-step ms", "hyper-step ms", "÷ simclr", "views/s"], rows)


if __name__ == "__main__":
    main()
