"""Hyper-step cost on the PPI GIN: hyper-step ÷ PT step, meta-PT ÷ plain PT, and memory.

Usage: python -m benchmarks.hyperstep [--sizes embedded paper] [--rounds 7] [--device cpu|cuda]

Prints, per model size, ratios measured side by side in one run:
1. extra cost of a hyper-step (K=1, P=1) in plain PT steps, fresh PT batch and reused PT graph;
2. meta-PT wall time ÷ plain PT wall time at the paper's schedule (hyper_every 10), as the authors
   run it and with the fast options (reuse the PT step's graph, online FT head inside the hyper-steps);
3. peak tensor memory of the hyper-step versus full backprop through T = 10 and 40 PT steps.
"""

from __future__ import annotations

import argparse

import torch
from torch.func import functional_call
from torch_geometric.data import Batch
from tqdm.auto import tqdm

from benchmarks.protocol import device_label, interleaved_times, median, peak_memory_mb, print_table
from metapt.engine import BatchStream, MetaLoopConfig, MetaPretrainer
from metapt.engine.hypergrad import PTGraph
from metapt.engine.metaloop import StepRecord
from metapt.ppi.graphs import EgoGraph
from metapt.ppi.model import GIN, count_parameters
from metapt.ppi.problem import MultitaskPPI

SIZES = {
    # name: (GIN layers, hidden, PT tasks, FT tasks, batch)
    "tiny": (2, 16, 20, 5, 8),  # for the smoke test only
    "embedded": (5, 64, 200, 40, 32),
    "paper": (5, 300, 5000, 40, 32),
}


# The fast options: the paper's schedule, with the PT step's graph reused and the online head's steps taken inside the hyper-steps
FAST = {"reuse_pt_graph": True, "online_head": "at_hyper_steps"}


def random_ego_graphs(n: int, n_pt: int, n_ft: int, seed: int) -> list[EgoGraph]:
    """PPI-shaped random ego-graphs (≈ 25 nodes, binary 9-d edge attributes), for timing only."""
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(n):
        nodes = int(torch.randint(12, 40, (1,), generator=gen))
        src = torch.randint(0, nodes, (2 * nodes,), generator=gen)
        dst = torch.randint(0, nodes, (2 * nodes,), generator=gen)
        edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
        attr = (torch.rand(2 * nodes, 9, generator=gen) < 0.3).float()
        attr[:, 7:] = 0
        graphs.append(EgoGraph(
            x=torch.ones(nodes, 1), edge_index=edge_index, edge_attr=torch.cat([attr, attr]),
            center_node_idx=torch.tensor([0]),
            go_target_pretrain=(torch.rand(1, n_pt, generator=gen) < 0.1).to(torch.uint8),
            go_target_downstream=(torch.rand(1, n_ft, generator=gen) < 0.2).to(torch.uint8),
        ))
    return graphs


def make_trainer(size: str, device: torch.device, steps: int = 100, **cfg) -> MetaPretrainer:
    layers, hidden, n_pt, n_ft, bs = SIZES[size]
    torch.manual_seed(0)
    problem = MultitaskPPI.full(GIN(layers, hidden), n_pt, n_ft).to(device)
    graphs = random_ego_graphs(8 * bs, n_pt, n_ft, seed=0)
    collate = Batch.from_data_list
    streams = [BatchStream(graphs, bs, seed=s, collate=collate) for s in (1, 2, 3)]
    config = MetaLoopConfig(**{"epochs": 1, "steps_per_epoch": steps, "warmup_epochs": 0, "checkpoint_every": 0, "snapshot_every": 1000, **cfg})
    return MetaPretrainer(problem, *streams, config, progress=False, prepare=lambda b: b.to(device))


def reused_step(trainer: MetaPretrainer, batch) -> StepRecord:
    """A PT step whose own graph (built with create_graph) serves the hyper-step, as with reuse_pt_graph."""
    loss = trainer.problem.pt_loss(batch)
    grads = torch.autograd.grad(loss, trainer.problem.theta(), create_graph=True)
    record = StepRecord(step=1, epoch=0, pt_loss=0.0)
    trainer._hyper_step(record, PTGraph(loss, list(grads)))
    trainer._pt_update(grads)
    return record


def bench_steps(size: str, device: torch.device, rounds: int) -> dict[str, float]:
    trainer = make_trainer(size, device)
    p = trainer.problem
    batch = trainer.prepare(trainer.pt_stream.batch(0))

    def plain():
        grads = torch.autograd.grad(p.pt_loss(batch), p.theta())
        trainer._pt_update(grads)

    def hyper_fresh():
        plain()
        trainer._hyper_step(StepRecord(step=1, epoch=0, pt_loss=0.0), None)

    fast = make_trainer(size, device, **FAST)  # reuse + the online head's 9 skipped steps taken inside the hyper-step
    t = interleaved_times({"plain": plain, "fresh": hyper_fresh, "reuse": lambda: reused_step(trainer, batch), "fast": lambda: reused_step(fast, batch)}, rounds)
    tp = median(t["plain"])
    out = {"params": count_parameters(p.encoder) + count_parameters(p.pt_head), "plain_ms": 1e3 * tp}
    for k in ("fresh", "reuse", "fast"):
        out[f"{k}_ms"] = 1e3 * (median(t[k]) - tp)
        out[f"{k}_ratio"] = median([(x - q) / q for x, q in zip(t[k], t["plain"])])
    return out


def bench_wall(size: str, device: torch.device, steps: int, repeats: int) -> dict[str, float]:
    variants = {
        "plain": dict(warmup_epochs=1),  # the baseline: meta off, same loop, no online FT head
        "meta": dict(warmup_epochs=0, hyper_every=10),  # paper: fresh PT batch, FT head every step
        "reuse": dict(warmup_epochs=0, hyper_every=10, reuse_pt_graph=True),
        # the same schedule (a hyper-step every 10, K = 1, P = 1); the head's steps taken inside the hyper-steps
        "fast": dict(warmup_epochs=0, hyper_every=10, **FAST),
        # … and the Neumann HVP skipped where its bound allows (neumann_skip_tol 1 %, λmax by power iteration)
        "fast+skip": dict(warmup_epochs=0, hyper_every=10, **FAST, hypergrad={"neumann_skip_tol": 1e-2}),
    }
    # trainers are built before the clock starts (building one generates its graphs); each round runs fresh ones
    built = {k: [make_trainer(size, device, steps, **v) for _ in range(repeats)] for k, v in variants.items()}
    times = interleaved_times({k: (lambda k=k: built[k].pop().run()) for k in variants}, repeats, warmup=0)
    base = times.pop("plain")
    # per-repeat ratios (each variant against the plain run of its own round), then the median
    return {"plain_s": median(base), **{k: median([t / b for t, b in zip(v, base)]) for k, v in times.items()}}


def unrolled_pt_hypergradient(trainer: MetaPretrainer, T: int, eta: float = 1e-4) -> None:
    """The alternative to IFT: backprop L_val through the last T differentiable PT steps."""
    p = trainer.problem
    names = [n for n, q in p.encoder.named_parameters()] + [f"head.{n}" for n, _ in p.pt_head.named_parameters()]
    theta = [t.detach().requires_grad_(True) for t in p.theta()]
    n_enc = len(list(p.encoder.parameters()))
    for s in range(T):
        batch = trainer.prepare(trainer.pt_stream.batch(s))
        enc = dict(zip(names[:n_enc], theta[:n_enc]))
        head = {n[5:]: t for n, t in zip(names[n_enc:], theta[n_enc:])}
        logits = functional_call(p.pt_head, head, (functional_call(p.encoder, enc, (batch,)),))
        target = batch.go_target_pretrain.view(logits.shape).float()
        loss = p.meta(torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(0))
        grads = torch.autograd.grad(loss, theta, create_graph=True)
        theta = [t - eta * g for t, g in zip(theta, grads)]
    ft = trainer.prepare(trainer.ft_val_stream.batch(0))
    p.encoder.eval()
    feats = functional_call(p.encoder, dict(zip(names[:n_enc], theta[:n_enc])), (ft,))
    p.encoder.train()
    val = p.ft_loss(p.ft_head(feats), ft)
    torch.autograd.grad(val, p.phi())


def bench_memory(size: str, device: torch.device) -> dict[str, float]:
    trainer = make_trainer(size, device)
    p = trainer.problem
    batch = trainer.prepare(trainer.pt_stream.batch(0))
    out = {"plain_mb": peak_memory_mb(lambda: torch.autograd.grad(p.pt_loss(batch), p.theta()))}
    out["hyper_mb"] = peak_memory_mb(lambda: trainer._hyper_step(StepRecord(step=1, epoch=0, pt_loss=0.0), None))
    fast = make_trainer(size, device, **FAST)
    out["fast_mb"] = peak_memory_mb(lambda: reused_step(fast, batch))  # PT step + hyper-step on its graph
    for P in (1, 5):
        cfg = trainer.cfg.hypergrad.model_copy(update={"neumann_terms": P})
        trainer.cfg = trainer.cfg.model_copy(update={"hypergrad": cfg})
        out[f"hyper_P{P}_mb"] = peak_memory_mb(lambda: trainer._hyper_step(StepRecord(step=1, epoch=0, pt_loss=0.0), None))
    for T in (10, 40):
        out[f"unroll{T}_mb"] = peak_memory_mb(lambda T=T: unrolled_pt_hypergradient(trainer, T))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["embedded", "paper"], choices=list(SIZES))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--wall-steps", type=int, default=100)
    ap.add_argument("--wall-repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = device_label(device)
    print(f"torch {torch.__version__} on {name}\n")
    steps, walls, mems = [], [], []
    phases = ["hyper-step", "wall"] + ([] if args.skip_memory else ["memory"])
    bar = tqdm(total=len(args.sizes) * len(phases), desc="benchmark", unit="phase")  # stderr: the tables stay clean
    for size in args.sizes:
        bar.set_description(f"{size}: hyper-step vs PT step")
        s = bench_steps(size, device, args.rounds)
        steps.append([size, s["params"], s["plain_ms"], s["fresh_ms"], s["fresh_ratio"], s["reuse_ms"], s["reuse_ratio"], s["fast_ratio"]])
        bar.update()
        bar.set_description(f"{size}: meta-PT vs plain PT wall time")
        w = bench_wall(size, device, args.wall_steps, repeats=args.wall_repeats)
        walls.append([size, args.wall_steps, w["plain_s"], w["meta"], w["reuse"], w["fast"], w["fast+skip"]])
        bar.update()
        if not args.skip_memory:
            bar.set_description(f"{size}: peak memory")
            m = bench_memory(size, device)
            mems.append([size, m["plain_mb"], m["hyper_mb"], m["hyper_P5_mb"], m["fast_mb"], m["unroll10_mb"], m["unroll40_mb"], m["unroll40_mb"] / m["hyper_mb"]])
            bar.update()
    bar.close()
    print_table("Hyper-step (K=1, P=1) cost in plain PT steps", ["size", "|θ|", "PT step ms", "hyper ms (fresh batch)", "÷ PT step", "hyper ms (reuse PT graph)", "÷ PT step", "+ head catch-up ÷ PT step"], steps)
    print()
    print_table(
        "Meta-PT wall time ÷ plain PT (hyper_every 10; plain = the baseline, meta off)",
        ["size", "PT steps", "plain PT s", "meta (paper) ÷ plain", "meta, reuse PT graph ÷ plain", "… and online head at hyper-steps ÷ plain",
         "… and HVP skipped by the bound ÷ plain"],
        walls,
    )
    if mems:
        print()
        print_table("Peak tensor memory (MB) above the model", ["size", "PT step", "hyper P=1", "hyper P=5", "fast: PT step + hyper", "unroll T=10", "unroll T=40", "T=40 ÷ hyper"], mems)


if __name__ == "__main__":
    main()
