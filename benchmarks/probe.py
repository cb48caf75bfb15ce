"""Cost of the signal-ceiling probe (metapt.ppi.probe): all PT tasks' alignments by one double backward per
batch, against the per-task gradient loop it replaces, and the whole probe projected to paper size.

Usage: python -m benchmarks.probe [--sizes embedded paper] [--rounds 3] [--loop-tasks 8] [--vectors 1 2 12] [--device cpu|cuda]

Per size, measured side by side in one run on the same PT batch (PPI-shaped random ego-graphs):
1. a PT batch's alignments of all T tasks with k vectors v at once (k = 1: one FT objective; 2: fixed and
   through-head; 12: with 10 bootstrap resamples), against T per-task gradients (timed for ``--loop-tasks``
   tasks and scaled to T) and against one plain PT gradient;
2. the probe's PT pass projected to the paper's PT set (82,520 graphs, the stand-in's meta-PT split) and peak memory.
"""

from __future__ import annotations

import argparse

import torch
from torch_geometric.data import Batch

from benchmarks.hyperstep import SIZES, random_ego_graphs
from benchmarks.protocol import device_label, interleaved_times, median, peak_memory_mb, print_table
from metapt.engine.alignment import task_alignments
from metapt.ppi.model import GIN
from metapt.ppi.problem import MultitaskPPI

PAPER_PT_GRAPHS = 82_520  # meta_pt of the 88,000-graph bio stand-in (train/val species + test-easy)
PROBE_BATCH = 256


def bench(size: str, device: torch.device, rounds: int, loop_tasks: int, ks: list[int]) -> dict:
    layers, hidden, n_pt, n_ft, _ = SIZES[size]
    torch.manual_seed(0)
    p = MultitaskPPI.full(GIN(layers, hidden), n_pt, n_ft).to(device)
    p.encoder.eval()
    batch = Batch.from_data_list(random_ego_graphs(PROBE_BATCH, n_pt, n_ft, seed=0)).to(device)
    params = [q for q in p.encoder.parameters()]
    gen = torch.Generator(device="cpu").manual_seed(1)
    vecs = {k: {f"v{i}": [torch.randn(q.shape, generator=gen).to(device) for q in params] for i in range(k)} for k in ks}

    def per_task(b):
        return p.per_task_pt_loss(b), b.num_graphs

    def plain():
        torch.autograd.grad(per_task(batch)[0].sum(), params)

    def loop():  # what the trick replaces: one backward per task (``loop_tasks`` of them, scaled below)
        losses, _ = per_task(batch)
        for t in range(loop_tasks):
            torch.autograd.grad(losses[t], params, retain_graph=t < loop_tasks - 1)

    fns = {"plain": plain, "loop": loop} | {f"all@{k}": (lambda k=k: task_alignments(per_task, params, [batch], vecs[k])) for k in ks}
    t = interleaved_times(fns, rounds, warmup=1)
    tp = median(t["plain"])
    out = {"size": size, "tasks": n_pt, "params": sum(q.numel() for q in params), "plain_s": tp, "loop_s": median(t["loop"]) * n_pt / loop_tasks}
    for k in ks:
        out[f"all@{k}_s"] = median(t[f"all@{k}"])
    out["mem_plain_mb"] = peak_memory_mb(plain)
    out[f"mem_all@{ks[-1]}_mb"] = peak_memory_mb(lambda: task_alignments(per_task, params, [batch], vecs[ks[-1]]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["embedded", "paper"], choices=list(SIZES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loop-tasks", type=int, default=8)
    ap.add_argument("--vectors", type=int, nargs="+", default=[1, 2, 12])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = device_label(device)
    print(f"torch {torch.__version__} on {name}; PT batch {PROBE_BATCH} graphs\n")
    ks = sorted(args.vectors)
    rows, proj = [], []
    for size in args.sizes:
        r = bench(size, device, args.rounds, args.loop_tasks, ks)
        rows.append([size, r["tasks"], r["params"], 1e3 * r["plain_s"], *(r[f"all@{k}_s"] / r["plain_s"] for k in ks), r["loop_s"] / r["plain_s"],
                     r["loop_s"] / r[f"all@{ks[0]}_s"]])
        batches = -(-PAPER_PT_GRAPHS // PROBE_BATCH)
        proj.append([size, batches, *(batches * r[f"all@{k}_s"] for k in ks), batches * r["loop_s"] / 3600, r["mem_plain_mb"], r[f"mem_all@{ks[-1]}_mb"]])
    print_table(f"One PT batch: all-task alignments ÷ one plain PT gradient (per-task loop timed on {args.loop_tasks} tasks, scaled to T)",
                ["size", "PT tasks", "|θ_enc|", "plain grad ms", *(f"all tasks, {k} v ÷ plain" for k in ks), "per-task loop ÷ plain", "loop ÷ all tasks (1 v)"], rows)
    print()
    print_table(f"The probe's PT pass over {PAPER_PT_GRAPHS:,} graphs ({PROBE_BATCH} per batch) and its peak tensor memory",
                ["size", "batches", *(f"{k} v: s" for k in ks), "per-task loop: h", "plain grad MB", f"all tasks, {ks[-1]} v: MB"], proj)


if __name__ == "__main__":
    main()
