"""PT and FT throughput at paper size, and the device-hours ETA of the whole paper grid.

Usage: python -m benchmarks.throughput [--device auto|cpu|cuda] [--steps 20] [--warmup 2] [--sizes paper]

1. PT steps of the real loop body (``MetaPretrainer._one_step``; ``CoTrainer`` for the CoTrain
   baselines) on random PPI-shaped ego-graphs and random 12×1024 ECGs: plain PT (meta off, the
   baseline) and meta-PT at the paper's schedule (hyper_every 10).
2. FT steps: finetune.py's inner loop (encoder forward/backward, linear head, Adam) at the FT
   batch size, and its no-grad evaluation forward at batch 256.
3. The ETA: those step times × steps per job (dataset size ÷ batch × epochs) × jobs of each kind
   in the paper profile's grid, in device-hours. Rows, job counts and names come from the domain
   declarations (``metapt.domain``: ``Domain.runs(profile)``, ``Method.pretrains``/``learns_phi``/
   ``sees_ft_data``), so a method or grid group added to a domain shows up here without an edit.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch

from benchmarks.hyperstep import FAST, make_trainer, random_ego_graphs
from benchmarks.hyperstep import SIZES as PPI_SIZES
from benchmarks.protocol import device_label, print_table, sync
from metapt.config import Profile, load_params
from metapt.domain import Domain, Method, Run, domain
from metapt.ecg.augment_learned import WarpAugmentation
from metapt.ecg.labelled import metaft_sizes
from metapt.ecg.model import resnet
from metapt.ecg.problem import SimCLRECG
from metapt.ecg.settings import ECGConfig
from metapt.engine import BatchStream, MetaLoopConfig, MetaPretrainer
from metapt.engine.cotrain import CoTrainer
from metapt.finetune import _set_dropout, train_step
from metapt.labelled import labelled_indices, pairs, stack

PAPER: Profile = load_params().profiles["paper"]

# ---- how a declared method's PT is timed ------------------------------------------------------------
# The ETA charges each PT job as one of the kinds bench_ppi/bench_ecg time, read off its Method:
#   learns_phi                       → "meta": hyper-steps every hyper_every steps, none in the warm-up
#                                      epochs (a meta-objective on FT data or on held-out PT tasks alike)
#   sees_ft_data, not learns_phi     → "cotrain": PT and FT losses on one trainer (engine.cotrain.CoTrainer)
#   otherwise                        → "plain": the PT loss alone (the baseline loop, meta off; fixed
#                                      task weights or a task subset cost the same)
# The one thing the declaration does not say is which co-training method projects its gradients
# (PCGrad: a slower step). metapt.ppi.pretrain keys on the method's name for it, and so does this
# table: (domain, method) → timed kind, consulted before the rule above. Keep method names out of
# the rest of this module.
PT_KIND_OVERRIDES: dict[tuple[str, str], str] = {("ppi", "cotrain_pcgrad"): "cotrain_pcgrad"}


def pt_kind(dom: Domain, method: Method) -> str:
    """The timed PT kind a method's jobs are charged as (see the table above)."""
    if not method.pretrains:
        raise ValueError(f"{dom.name}: {method.name} does not pre-train")
    if (dom.name, method.name) in PT_KIND_OVERRIDES:
        return PT_KIND_OVERRIDES[dom.name, method.name]
    return "meta" if method.learns_phi else "cotrain" if method.sees_ft_data else "plain"


def pt_kinds(dom: Domain) -> tuple[str, ...]:
    """The PT kinds a domain's declared methods need timed, in declaration order."""
    return tuple(dict.fromkeys(pt_kind(dom, m) for m in dom.methods if m.pretrains))


def ecg_config(size: str) -> ECGConfig:
    """``paper``/``embedded``: the params.yaml profile; ``tiny``: a toy ResNet for the smoke test."""
    if size != "tiny":
        return load_params().profiles[size].ecg
    cfg = PAPER.ecg
    model = cfg.model.model_copy(update={"widths": (8, 16), "strides": (1, 2), "blocks": 1, "kernel": 5, "stem_stride": 4})
    return cfg.model_copy(update={"model": model, "pretrain": cfg.pretrain.model_copy(update={"batch_size": 8, "meta_batch_size": 4, "warp_channels": 4})})


ECG_LENGTH = {"tiny": 128, "embedded": 1024, "paper": 1024}  # PTB-XL 100 Hz, padded 1000 → 1024


@dataclass(frozen=True)
class DataSizes:
    """The dataset sizes the ETA assumes (docs/background.md, "Data sizes"); override on the command line."""

    ppi_graphs: int = 88_000  # Hu et al. bio, supervised part
    ppi_human: int = 0  # human (test) graphs: unknown until downloaded; 0 counts all as train/val (upper bound on PT and FT)
    ecg_records: int = 21_799  # PTB-XL 1.0.3
    ecg_pt_frac: float = 0.9  # folds 1–9 ≈ 90 %; fold 10 is the test set

    @property
    def ppi_pt(self) -> int:  # meta_pt = train/val species ∪ test-easy (half of human)
        return self.ppi_graphs - self.ppi_human + self.ppi_human // 2

    @property
    def ppi_ft(self) -> tuple[int, int, int]:  # FT train, FT val (85/15 of train/val), tests (all human)
        tv = self.ppi_graphs - self.ppi_human
        return int(0.85 * tv), int(0.15 * tv), self.ppi_human

    @property
    def ecg_pt(self) -> int:
        return round(self.ecg_pt_frac * self.ecg_records)

    @property
    def ecg_test(self) -> int:
        return self.ecg_records - self.ecg_pt


# ---- timing ------------------------------------------------------------------------------------

def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def loop_config(loop: MetaLoopConfig, meta: bool, fast: bool = False) -> MetaLoopConfig:
    """A profile's loop (lrs, hyper_every, hypergrad) with meta on from step 1, or off (the baseline); ``fast`` adds FAST."""
    update = {"epochs": 1, "steps_per_epoch": 10**6, "warmup_epochs": 0 if meta else 1, "checkpoint_every": 0, "snapshot_every": 10**6}
    return loop.model_copy(update={**update, **(FAST if fast else {})})


def time_pt_steps(trainer: MetaPretrainer, steps: int, warmup: int, device: torch.device) -> dict[str, float]:
    """Wall time per PT step of the real loop body, at the trainer's own hyper-step schedule.

    The global step counter is placed so that warm-up and timed window each start on a
    hyper-step: with meta on, the window then holds hyper-steps and plain steps even when it is
    shorter than ``hyper_every``, and the per-step time is the schedule's average
    ((h − 1)·plain + hyper) / h. Without meta every step is alike and this is their mean.
    """
    h = trainer.cfg.hyper_every
    trainer.step = h - 1
    for _ in range(warmup):
        trainer._one_step()
    trainer.step = h * (1 + math.ceil(max(warmup, 1) / h)) - 1
    sync(device)
    _reset_peak(device)
    hyper, normal = [], []
    for _ in range(steps):
        is_hyper = trainer.is_hyper_step(trainer.step + 1)
        t0 = time.perf_counter()
        trainer._one_step()
        sync(device)
        (hyper if is_hyper else normal).append(time.perf_counter() - t0)
    if hyper and not normal:
        raise ValueError("time at least 2 steps: the window needs a hyper-step and a plain one")
    normal_s = float(np.mean(normal))
    step_s = normal_s if not hyper else ((h - 1) * normal_s + float(np.mean(hyper))) / h
    return {"s_per_step": step_s, "normal_s": normal_s, "hyper_s": float(np.mean(hyper)) if hyper else float("nan"), "n_hyper": len(hyper), "peak_mb": _peak_mb(device)}


def time_calls(fn, steps: int, warmup: int, device: torch.device) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    sync(device)
    _reset_peak(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return {"s_per_step": (time.perf_counter() - t0) / steps, "peak_mb": _peak_mb(device)}


def ft_step_fns(encoder: nn.Module, n_out: int, train_batch, eval_batch, inputs, targets, lr: float, dropout: float | None):
    """finetune.py's inner loop (fresh linear head, Adam on encoder + head, BCE) and its eval forward."""
    encoder = copy.deepcopy(encoder)
    _set_dropout(encoder, dropout)
    head = nn.Linear(encoder.out_dim, n_out).to(next(encoder.parameters()).device)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=lr)

    def ft_step():
        encoder.train()
        train_step(encoder, head, opt, inputs(train_batch), targets(train_batch))

    def eval_step():
        encoder.eval()
        with torch.no_grad():
            head(encoder(inputs(eval_batch))).float().cpu()

    return ft_step, eval_step


# ---- the two domains ---------------------------------------------------------------------------

def bench_ppi(size: str, device: torch.device, steps: int, warmup: int) -> dict[str, dict]:
    """The PT kinds PPI's declared methods need (``pt_kinds``: plain, CoTrain, CoTrain+PCGrad, meta; plus meta
    with the fast options) and full FT, on hyperstep.py's trainer."""
    layers, hidden, _, n_ft, bs = PPI_SIZES[size]
    if size == "paper":
        m = PAPER.ppi.model
        assert (layers, hidden, bs) == (m.layers, m.hidden, PAPER.ppi.pretrain.batch_size), "hyperstep.SIZES['paper'] drifted from params.yaml"
    loop = PAPER.ppi.pretrain.loop

    def trainer(meta: bool, fast: bool = False) -> MetaPretrainer:
        return make_trainer(size, device, steps, **loop_config(loop, meta, fast).model_dump())

    def cotrainer(pcgrad: bool) -> CoTrainer:
        t = trainer(False)
        return CoTrainer(t.problem, t.pt_stream, t.ft_train_stream, t.ft_val_stream, t.cfg, progress=False, prepare=t.prepare, pcgrad=pcgrad)

    builders = {"plain": lambda: trainer(False), "meta": lambda: trainer(True), "meta_fast": lambda: trainer(True, True),
                "cotrain": lambda: cotrainer(False), "cotrain_pcgrad": lambda: cotrainer(True)}
    declared = pt_kinds(domain("ppi"))
    kinds = dict.fromkeys(["plain", *declared, *(["meta_fast"] if "meta" in declared else [])])  # plain: every ratio's base
    if unknown := [k for k in kinds if k not in builders]:
        raise KeyError(f"bench_ppi cannot time PT kind(s) {unknown}: add a builder here")
    out = {k: time_pt_steps(builders[k](), steps, warmup, device) for k in kinds}
    for v in out.values():
        v["batch"] = bs

    ft = PAPER.ppi.finetune["full"]
    ft_bs = ft.batch_size if size != "tiny" else bs
    graphs = random_ego_graphs(256, 5, n_ft, seed=1)
    train, evalb = Batch.from_data_list(graphs[:ft_bs]).to(device), Batch.from_data_list(graphs).to(device)
    enc = make_trainer(size, device).problem.encoder
    train_step, eval_step = ft_step_fns(enc, n_ft, train, evalb, lambda b: b, lambda b: b.go_target_downstream.view(b.num_graphs, -1), ft.lr, ft.dropout)
    out["ft_full"] = {**time_calls(train_step, steps, warmup, device), "batch": ft_bs}
    out["ft_eval"] = {**time_calls(eval_step, max(1, steps // 4), 1, device), "batch": 256}
    return out


def make_ecg_trainer(size: str, device: torch.device, meta: bool, labels: int = 500, batch: int | None = None, fast: bool = False) -> MetaPretrainer:
    """A SimCLR trainer built as metapt.ecg.pretrain.pretrain builds it, over random records."""
    cfg, length = ecg_config(size), ECG_LENGTH[size]
    m, pc = cfg.model, cfg.pretrain.model_copy(update={"batch_size": batch or cfg.pretrain.batch_size})
    torch.manual_seed(0)
    encoder = resnet(m)
    problem = SimCLRECG(encoder, WarpAugmentation(channels=pc.warp_channels, scalar_lr=pc.warp_scalar_lr), use_meta_augmentation=meta)
    rng = np.random.default_rng(0)
    n = max(2 * pc.batch_size, labels)
    x = rng.standard_normal((n, length, 12), dtype=np.float32)
    y = (rng.random((n, 5)) < 0.3).astype(np.float32)
    pool = np.arange(n)
    n_tr, n_va = metaft_sizes(labels)
    lab = labelled_indices(pool, labels, 0)
    streams = [
        BatchStream(pairs(x, y, pool), pc.batch_size, seed=1, collate=stack, drop_last=True),
        BatchStream(pairs(x, y, lab[:n_tr]), min(pc.meta_batch_size, n_tr), seed=2, collate=stack),
        BatchStream(pairs(x, y, lab[n_tr:]), min(pc.meta_batch_size, n_va), seed=3, collate=stack),
    ]
    problem.to(device)
    return MetaPretrainer(problem, *streams, loop_config(pc.loop, meta, fast), progress=False, prepare=lambda b: tuple(t.to(device) for t in b))


def bench_ecg(size: str, device: torch.device, steps: int, warmup: int, labels: list[int], batch: int | None = None) -> dict[str, dict]:
    """SimCLR PT (plain), meta-SimCLR at each N (its MetaFT batch is min(meta_batch, N's split)), FT steps.

    ``batch`` times PT at a smaller batch and scales the step time linearly up to the profile's
    batch: only for a CPU smoke run, where a paper-size hyper-step takes minutes.
    """
    cfg = ecg_config(size)
    bs = cfg.pretrain.batch_size
    scale = bs / batch if batch else 1.0

    def pt(meta: bool, n: int = 500, fast: bool = False) -> dict:
        r = time_pt_steps(make_ecg_trainer(size, device, meta, n, batch, fast), steps, warmup, device)
        return {**r, **{k: scale * r[k] for k in ("s_per_step", "normal_s", "hyper_s")}, "batch": bs, "timed_batch": batch or bs}

    out = {"plain": pt(False)}
    for n in labels:
        out[f"meta@{n}"] = pt(True, n)
    out[f"meta_fast@{labels[-1]}"] = pt(True, labels[-1], fast=True)
    enc = make_ecg_trainer(size, device, False).problem.encoder
    full = cfg.finetune.get("full") or next(iter(cfg.finetune.values()))
    rng = np.random.default_rng(1)
    batch = lambda k: (torch.from_numpy(rng.standard_normal((k, ECG_LENGTH[size], 12), dtype=np.float32)).to(device), (torch.rand(k, 5) < 0.3).to(device))  # noqa: E731
    train_step, eval_step = ft_step_fns(enc, 5, batch(full.batch_size), batch(256), lambda b: b[0], lambda b: b[1], full.lr, full.dropout)
    out["ft_full"] = {**time_calls(train_step, steps, warmup, device), "batch": full.batch_size}
    out["ft_eval"] = {**time_calls(eval_step, max(1, steps // 4), 1, device), "batch": 256}
    return out


# ---- the ETA -----------------------------------------------------------------------------------

def _row(stage: str, jobs: int, steps: int, job_s: float) -> list:
    """[stage, jobs, steps per job, s per step, device-h per job, device-h total]."""
    return [stage, jobs, steps, job_s / steps if steps else float("nan"), job_s / 3600, jobs * job_s / 3600]


def _ft_seconds(epochs: int, n_train: int, bs: int, n_val: int, n_test: int, t_train: float, t_eval: float) -> tuple[int, float]:
    """One full-FT run (finetune.finetune): per epoch the train batches and a no-grad pass over val
    at batch 256; the tests once at the end. Returns (train steps, seconds)."""
    steps = epochs * math.ceil(n_train / bs)
    evals = epochs * math.ceil(n_val / 256) + math.ceil(n_test / 256)
    return steps, steps * t_train + evals * t_eval


def _pt_seconds(r: dict, loop: MetaLoopConfig, steps_per_epoch: int, meta: bool) -> float:
    """One PT job; a meta run's warm-up epochs have the online head but no hyper-steps."""
    warm = min(loop.warmup_epochs, loop.epochs) if meta else 0
    return steps_per_epoch * (warm * r["normal_s"] + (loop.epochs - warm) * r["s_per_step"])


@dataclass(frozen=True)
class DomainCost:
    """What the ETA needs of a domain beyond its declaration: the measured step times, the PT loop and
    steps per epoch, and the FT cost of one run by its ``labels`` (every FT mode and FT seed)."""

    domain: Domain
    measured: dict[str, dict]
    loop: MetaLoopConfig
    pt_steps_per_epoch: int
    ft: Callable[[int | None], tuple[int, float]]  # run.labels → (train steps, seconds)
    ft_note: str  # what the FT row of the runs without a label budget covers


def _timed(c: DomainCost, kind: str, labels: int | None) -> dict:
    """The measurement a PT job is charged: ``kind``, or ``kind@N`` where the bench times it per N."""
    if kind in c.measured:
        return c.measured[kind]
    if any(k.startswith(f"{kind}@") for k in c.measured) and labels is not None:
        return c.measured[_meta_key(c.measured, labels, kind)]
    raise KeyError(f"{c.domain.name}: PT kind {kind!r} (labels {labels}) was not timed; timed: {', '.join(c.measured)}. "
                   f"Time it in bench_{c.domain.name} or map the method in PT_KIND_OVERRIDES")


def _label(prefix: str, labels: int | None, note: str) -> str:
    return f"{prefix} N={labels}" if labels is not None else f"{prefix} ({note})"


def pt_rows(c: DomainCost, profile: Profile) -> list[list]:
    """One row per declared (method, label budget) that pre-trains, in grid order; jobs = its runs."""
    d = c.domain
    jobs: dict[tuple[str, int | None], int] = {}
    for r in d.runs(profile):
        if d.method(r.method).pretrains:
            jobs[r.method, r.labels] = jobs.get((r.method, r.labels), 0) + 1
    rows = []
    for (name, labels), n in jobs.items():
        m, kind = d.method(name), pt_kind(d, d.method(name))
        job_s = _pt_seconds(_timed(c, kind, labels), c.loop, c.pt_steps_per_epoch, m.learns_phi)
        rows.append(_row(_label(f"pretrain_{d.name} {name}", labels, kind), n, c.loop.epochs * c.pt_steps_per_epoch, job_s))
    return rows


def ft_rows(c: DomainCost, profile: Profile) -> list[list]:
    """One row per label budget of the grid's runs (every run has an FT job, with PT or without)."""
    by_labels: dict[int | None, list[Run]] = {}
    for r in c.domain.runs(profile):
        by_labels.setdefault(r.labels, []).append(r)
    rows = []
    for labels, runs in by_labels.items():
        steps, secs = c.ft(labels)
        methods = "/".join(dict.fromkeys(r.method for r in runs))
        rows.append(_row(_label(f"finetune_{c.domain.name} {methods}", labels, c.ft_note), len(runs), steps, secs))
    return rows


def ppi_cost(ppi: dict, profile: Profile, sizes: DataSizes) -> DomainCost:
    """PPI: PT over the meta_pt graphs (the last partial batch kept); every run's FT is on the same splits."""
    p = profile.ppi
    if any(c.mode == "linear" for c in p.finetune.values()):
        raise NotImplementedError("PPI linear FT is not in the paper profile; add its cost here if it is")
    ft_tr, ft_va, ft_te = sizes.ppi_ft
    per_mode = [_ft_seconds(c.epochs, ft_tr, c.batch_size, ft_va, ft_te, ppi["ft_full"]["s_per_step"], ppi["ft_eval"]["s_per_step"]) for c in p.finetune.values()]
    k = len(p.ft_seeds)
    run_ft = (k * sum(s for s, _ in per_mode), k * sum(t for _, t in per_mode))
    return DomainCost(domain("ppi"), ppi, p.pretrain.loop, math.ceil(sizes.ppi_pt / p.pretrain.batch_size), lambda labels: run_ft,
                      f"{', '.join(p.finetune)}, every setting")


def ecg_cost(ecg: dict, profile: Profile, sizes: DataSizes) -> DomainCost:
    """ECG: PT over folds 1–9 (drop_last); a run is fine-tuned at each N of ``grid.ft_labels(run.labels)``."""
    e = profile.ecg

    def ft_at(n: int) -> tuple[int, float]:
        """FT at N labels, every mode and FT seed; linear = featurise train/val/test once (the head's steps are negligible)."""
        n_tr, n_va = metaft_sizes(n)
        steps = secs = 0.0
        for c in e.finetune.values():
            if c.mode == "full":
                s, t = _ft_seconds(c.epochs, n_tr, c.batch_size, n_va, sizes.ecg_test, ecg["ft_full"]["s_per_step"], ecg["ft_eval"]["s_per_step"])
            else:
                s, t = 0, sum(math.ceil(m / 256) for m in (n_tr, n_va, sizes.ecg_test)) * ecg["ft_eval"]["s_per_step"]
            steps, secs = steps + s, secs + t
        return int(len(e.ft_seeds) * steps), len(e.ft_seeds) * secs

    def run_ft(labels: int | None) -> tuple[int, float]:
        budgets = [ft_at(n) for n in e.grid.ft_labels(labels)]  # no labels: every N and N_FT; else N, then each N_FT > N
        return sum(s for s, _ in budgets), sum(t for _, t in budgets)

    return DomainCost(domain("ecg"), ecg, e.pretrain.loop, sizes.ecg_pt // e.pretrain.batch_size, run_ft, "every N and N_FT")


def eta_rows(ppi: dict, ecg: dict, profile: Profile = PAPER, sizes: DataSizes = DataSizes()) -> list[list]:
    """Device-hours per stage kind of the profile's grid, from measured seconds per step; last row: total."""
    costs = [ppi_cost(ppi, profile, sizes), ecg_cost(ecg, profile, sizes)]
    rows = [row for c in costs for row in pt_rows(c, profile)] + [row for c in costs for row in ft_rows(c, profile)]
    rows.append(["total", sum(r[1] for r in rows), "", "", "", sum(r[5] for r in rows)])
    return rows


def _meta_key(measured: dict, n: int, kind: str = "meta") -> str:
    """kind@N if N was timed, else the timed N with the closest MetaFT batch (the only thing N changes)."""
    timed = [int(k.split("@")[1]) for k in measured if k.startswith(f"{kind}@")]
    if n in timed:
        return f"{kind}@{n}"
    return f"{kind}@{min(timed, key=lambda t: abs(metaft_sizes(t)[0] - metaft_sizes(n)[0]))}"


# ---- the printout ------------------------------------------------------------------------------

def pt_table_rows(domain: str, res: dict, unit: str) -> list[list]:
    base = res["plain"]["s_per_step"]
    rows = []
    for kind, r in res.items():
        if kind.startswith("ft_"):
            continue
        peak = "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        if r.get("timed_batch", r["batch"]) != r["batch"]:
            kind = f"{kind} (batch {r['timed_batch']} × {r['batch'] // r['timed_batch']})"
        rows.append([domain, kind, 1e3 * r["s_per_step"], 1 / r["s_per_step"], f"{r['batch'] / r['s_per_step']:.1f} {unit}", r["s_per_step"] / base,
                     r.get("n_hyper", ""), "" if not r.get("n_hyper") else 1e3 * r["hyper_s"], peak])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement (≥ 2; a multiple of 10 averages the schedule exactly)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["paper"], choices=["tiny", "embedded", "paper"], help="model sizes; the ETA uses paper")
    ap.add_argument("--ecg-labels", type=int, nargs="+", default=None, help="N to time ECG meta-PT at (default: the paper grid); others use the closest timed N")
    ap.add_argument("--ecg-batch", type=int, default=None, help="CPU smoke only: time ECG PT at this batch, scale the step time linearly to the paper's")
    ap.add_argument("--ppi-human", type=int, default=DataSizes.ppi_human, help="human graphs in the bio set, once known (refines the PPI sizes)")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be ≥ 2: a meta window needs a hyper-step and a plain step")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    name = device_label(device)
    print(f"torch {torch.__version__} on {name}; {args.steps} timed steps after {args.warmup} warm-up\n", flush=True)
    labels = args.ecg_labels or list(PAPER.ecg.grid.labels)
    results = {}
    for size in args.sizes:
        ppi = bench_ppi(size, device, args.steps, args.warmup)
        ecg = bench_ecg(size, device, args.steps, args.warmup, labels, args.ecg_batch)
        results[size] = (ppi, ecg)
        print_table(f"PT throughput, {size} size (meta: hyper_every {PAPER.ppi.pretrain.loop.hyper_every}; plain = the baseline, meta off)",
                    ["domain", "kind", "ms/step", "steps/s", "throughput", "÷ plain", "hyper-steps timed", "hyper-step ms", "peak GPU MB"],
                    pt_table_rows("ppi", ppi, "graphs/s") + pt_table_rows("ecg", ecg, "records/s"))
        print()
        ft_rows = [[d, k, r["batch"], 1e3 * r["s_per_step"], r["batch"] / r["s_per_step"]] for d, res in (("ppi", ppi), ("ecg", ecg)) for k, r in res.items() if k.startswith("ft_")]
        print_table(f"FT throughput, {size} size (finetune.py's inner loop: encoder fwd+bwd, linear head, Adam; eval = no-grad forward)",
                    ["domain", "kind", "batch", "ms/step", "examples/s"], ft_rows)
        print()
    if "paper" not in results:
        print("No ETA: it needs --sizes paper.")
        return
    sizes = DataSizes(ppi_human=args.ppi_human)
    p, e = PAPER.ppi, PAPER.ecg
    print(f"Assumptions: PPI {sizes.ppi_graphs} graphs, {sizes.ppi_human} human{' (unknown: upper bound)' if not sizes.ppi_human else ''} → PT {sizes.ppi_pt} graphs, "
          f"FT train/val/test {sizes.ppi_ft}; PT batch {p.pretrain.batch_size}, {p.pretrain.loop.epochs} epochs; "
          f"FT {', '.join(f'{k}: batch {c.batch_size}, {c.epochs} epochs' for k, c in p.finetune.items())}, {len(p.ft_seeds)} FT seeds.")
    print(f"ECG {sizes.ecg_records} records, PT {sizes.ecg_pt} (folds 1–9 ≈ {sizes.ecg_pt_frac:.0%}), test {sizes.ecg_test}; PT batch {e.pretrain.batch_size} (drop_last), "
          f"{e.pretrain.loop.epochs} epochs; FT {', '.join(f'{k}: batch {c.batch_size}, {c.epochs} epochs' for k, c in e.finetune.items())}, {len(e.ft_seeds)} FT seeds, "
          f"FT sizes from metaft_sizes(N); {'/'.join(m.name for m in domain('ecg').methods if m.learns_phi)} timed at N = {labels}.")
    if args.ecg_batch:
        print(f"ECG PT was timed at batch {args.ecg_batch} and scaled linearly to {e.pretrain.batch_size}: a CPU smoke estimate, not a measurement.")
    print("PT s/step: the job's average (a meta run's warm-up epoch has no hyper-steps). FT s/step includes the per-epoch validation pass "
          "and the final test pass; partial batches are charged as full ones. One job per device.\n")
    print_table(f"ETA of the paper profile ({name})", ["stage kind", "jobs", "steps per job", "s per step", "device-h per job", "device-h total"], eta_rows(*results["paper"], sizes=sizes))


if __name__ == "__main__":
    main()
