"""The authors' hyper-step beside metapt's, in one process, on the same GIN and the same batches.

Usage: python -m benchmarks.authors_step [--sizes embedded paper] [--rounds 7] [--device cpu|cuda]

The authors' structure, written here from the paper (Algorithm 1, Appendix) and the description of
their code; none of it is taken from their code:
- the FT head is unrolled with the ``higher`` library: ``innerloop_ctx`` over the head and a
  ``torch.optim.Adam``, one differentiable Adam step (K = 1) on a MetaFT-train batch, the encoder in
  eval mode, then the MetaFT-val loss; g = dL_val/dθ by ``torch.autograd.grad``;
- one fresh PT batch: ∇θ L_PT with ``create_graph=True``, gradients flattened into one vector;
- the Neumann series with P = 1 and α = PT lr: p ← p − α·Hp, v ← v + p, then v ← α v, every
  Hessian-vector product a ``torch.autograd.grad`` on the flat gradient;
- the mixed term −vᵀ ∂²L_PT/∂θ∂φ, one more ``torch.autograd.grad``; then an Adam step on φ.

Measured side by side, rounds interleaved (benchmarks/protocol.py): a plain PT step, the authors'
hyper-step, metapt's paper mode (the same estimator: fresh PT batch, K = 1, P = 1, α = PT lr),
paper mode with the Neumann-skip bound on (``neumann_skip_tol``; its power iteration amortised in),
the fast mode (the PT step's graph reused, the online head's steps taken inside the hyper-step), and
the fast mode with the bound on. Each is printed as extra cost
in plain PT steps and as the authors' step ÷ it. Before timing, the hypergradients of the authors'
step and of metapt's paper mode are computed from one state on one set of batches (dropout off
for this check only: the two draw their masks in a different order) and their cosine printed.
``higher`` is a benchmark-only dependency (requirements.txt); nothing under metapt/ imports it.
"""

from __future__ import annotations

import argparse
import copy
import math

import higher
import torch
from tqdm.auto import tqdm

from benchmarks.hyperstep import FAST, SIZES, make_trainer, reused_step
from benchmarks.protocol import device_label, interleaved_times, median, print_table
from metapt.engine import MetaPretrainer
from metapt.engine.hypergrad import hypergradient, neumann_skip_bound, power_iteration, pt_gradient_graph
from metapt.engine.metaloop import StepRecord

SKIP_TOL = 1e-2  # skip the HVP when it changes v by at most 1 %: far below the batch-to-batch noise of the estimate (the agreement table)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def authors_hypergradient(trainer: MetaPretrainer, head_opt: torch.optim.Optimizer, ft_batch, val_batch, pt_batch, alpha: float, terms: int = 1):
    """dL_val/dφ as the authors' structure computes it (see the module docstring); returns the flat hypergradient."""
    p = trainer.problem
    theta, phi = p.theta(), p.phi()
    encoder_was = p.encoder.training
    p.encoder.eval()
    with higher.innerloop_ctx(p.ft_head, head_opt, copy_initial_weights=False) as (head, diff_opt):
        diff_opt.step(p.ft_loss(head(p.encoder(ft_batch)), ft_batch))
        val_loss = p.ft_loss(head(p.encoder(val_batch)), val_batch)
        d_val = _flat(torch.autograd.grad(val_loss, theta, allow_unused=True, materialize_grads=True))
    p.encoder.train(encoder_was)
    p.encoder.train()
    p.pt_head.train()
    d_pt = _flat(torch.autograd.grad(p.pt_loss(pt_batch), theta, create_graph=True))
    v, term = d_val.detach().clone(), d_val.detach().clone()
    for _ in range(terms):
        term = term - alpha * _flat(torch.autograd.grad(d_pt, theta, grad_outputs=term, retain_graph=True))
        v = v + term
    v = alpha * v
    return -_flat(torch.autograd.grad(d_pt, phi, grad_outputs=v))


def authors_hyper_step(trainer: MetaPretrainer, head_opt, meta_opt, pt_batch) -> None:
    """One whole hyper-step in the authors' structure: fresh MetaFT batches, the hypergradient, Adam on φ."""
    ft_batch = trainer.prepare(next(trainer.ft_train_stream))
    val_batch = trainer.prepare(next(trainer.ft_val_stream))
    hyper = authors_hypergradient(trainer, head_opt, ft_batch, val_batch, pt_batch, trainer.pt_opt.param_groups[0]["lr"])
    i = 0
    for q in trainer.problem.phi():
        q.grad = hyper[i:i + q.numel()].view_as(q)
        i += q.numel()
    meta_opt.step()
    meta_opt.zero_grad(set_to_none=True)


def _cos(a, b) -> float:
    a, b = _flat(a).double(), _flat(b).double()
    return float(a @ b / (a.norm() * b.norm()))


def agreement(size: str, device: torch.device) -> dict[str, float]:
    """From one state (dropout off: the two draw their masks in a different order), the cosine between
    the authors' and metapt's paper-mode hypergradients on one set of batches; for scale, the cosine
    between metapt's on two sets of batches (the estimator's own noise), and between metapt's with and
    without the Neumann HVP (what the skip changes)."""
    trainer = make_trainer(size, device)
    p = trainer.problem
    p.encoder.dropout.p = 0.0
    lr = trainer.pt_opt.param_groups[0]["lr"]
    saved = copy.deepcopy({k: m.state_dict() for k, m in p.modules().items()})

    def restore():
        for k, m in p.modules().items():
            m.load_state_dict(saved[k])

    def ours(i: int, **options):
        restore()
        ft, val, pt = (trainer.prepare(s.batch(i)) for s in (trainer.ft_train_stream, trainer.ft_val_stream, trainer.hyper_pt_stream))
        cfg = trainer.cfg.hypergrad.model_copy(update=options)
        return hypergradient(p, trainer.head_opt, trainer.head_opt.init_state(list(p.named_head_params().values())), [ft], val, [pt], cfg, pt_lr=lr).grads

    paper, other_batches, no_hvp = ours(0), ours(1), ours(0, neumann_terms=0)
    restore()
    ft, val, pt = (trainer.prepare(s.batch(0)) for s in (trainer.ft_train_stream, trainer.ft_val_stream, trainer.hyper_pt_stream))
    theirs = authors_hypergradient(trainer, torch.optim.Adam(p.ft_head.parameters(), lr=trainer.cfg.ft_head_lr), ft, val, pt, lr)
    # v̂ = α(P + 1)g with P = 1 is 2αg: the P = 0 estimate αg, doubled; the direction is the same
    return {"authors": _cos(paper, [theirs]), "batches": _cos(paper, other_batches), "skip": _cos(paper, no_hvp)}


def bench(size: str, device: torch.device, rounds: int) -> dict[str, float]:
    trainer = make_trainer(size, device)  # paper mode (the defaults): fresh PT batch, K = 1, P = 1, α = PT lr
    skip = make_trainer(size, device, hypergrad={"neumann_skip_tol": SKIP_TOL})
    fast = make_trainer(size, device, **FAST)
    fast_skip = make_trainer(size, device, **FAST, hypergrad={"neumann_skip_tol": SKIP_TOL})
    authors = make_trainer(size, device)
    head_opt = torch.optim.Adam(authors.problem.ft_head.parameters(), lr=authors.cfg.ft_head_lr)
    meta_opt = torch.optim.Adam(authors.problem.phi(), lr=authors.cfg.meta_lr)
    p = trainer.problem
    batch = trainer.prepare(trainer.pt_stream.batch(0))

    def plain(t=trainer):
        grads = torch.autograd.grad(t.problem.pt_loss(batch), t.problem.theta())
        t._pt_update(grads)

    decisions: dict[str, list[float]] = {"paper+skip": [], "fast+skip": []}  # 1.0 where the bound let a hyper-step skip its HVP

    def ours(t, name=None):
        plain(t)
        record = StepRecord(step=1, epoch=0, pt_loss=0.0)
        t._hyper_step(record, None)
        if name:
            decisions[name].append(record.hvps_skipped)

    def ours_fast(t, name=None):
        record = reused_step(t, batch)
        if name:
            decisions[name].append(record.hvps_skipped)

    def theirs():
        plain(authors)
        authors_hyper_step(authors, head_opt, meta_opt, authors.prepare(next(authors.hyper_pt_stream)))

    hcfg = skip.cfg.hypergrad

    def power():  # λmax for the bound: power_iterations HVPs on a PT graph, once every power_refresh hyper-steps
        power_iteration(pt_gradient_graph(skip.problem, [batch], hcfg), skip.problem.theta(), hcfg.power_iterations)

    fns = {"plain": plain, "authors": theirs, "paper": lambda: ours(trainer), "paper+skip": lambda: ours(skip, "paper+skip"),
           "fast": lambda: ours_fast(fast), "fast+skip": lambda: ours_fast(fast_skip, "fast+skip"), "power": power}
    t = interleaved_times(fns, rounds)
    base = t["plain"]
    extra = {k: [(x - q) / q for x, q in zip(v, base)] for k, v in t.items() if k not in ("plain", "power")}  # in plain PT steps, per round
    # the skip variant pays its power iteration once per power_refresh hyper-steps: amortised in
    for k in ("paper+skip", "fast+skip"):
        extra[k] = [e + w / q / hcfg.power_refresh for e, w, q in zip(extra[k], t["power"], base)]
    out = {"plain_ms": 1e3 * median(base), "params": sum(q.numel() for q in p.theta())}
    for k, v in extra.items():
        out[f"{k}_steps"] = median(v)
        out[f"{k}_speedup"] = median([a / o for a, o in zip(extra["authors"], v)]) if k != "authors" else 1.0
    for name, t_ in (("paper+skip", skip), ("fast+skip", fast_skip)):
        lam = t_.lambda_max
        out[f"{name}_bound"] = math.nan if lam is None else neumann_skip_bound(t_.pt_opt.param_groups[0]["lr"], lam + hcfg.damping, hcfg.neumann_terms)
        out[f"{name}_skipped"] = sum(decisions[name]) / max(1, len(decisions[name]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["embedded", "paper"], choices=list(SIZES))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = device_label(device)
    print(f"torch {torch.__version__}, higher {getattr(higher, '__version__', '0.2.1')} on {name}\n")
    rows, checks = [], []
    for size in tqdm(args.sizes, desc="authors' step vs metapt", unit="size"):
        a = agreement(size, device)
        checks.append([size, f"{a['authors']:.6f}", f"{a['skip']:.6f}", f"{a['batches']:.3f}"])
        b = bench(size, device, args.rounds)
        rows.append([size, b["params"], b["plain_ms"], b["authors_steps"], b["paper_steps"], b["paper_speedup"], b["paper+skip_steps"],
                     b["paper+skip_speedup"], f"{b['paper+skip_bound']:.2g}, {b['paper+skip_skipped']:.0%}", b["fast_steps"], b["fast_speedup"],
                     b["fast+skip_steps"], b["fast+skip_speedup"], f"{b['fast+skip_bound']:.2g}, {b['fast+skip_skipped']:.0%}"])
    print_table("Agreement of hypergradients from one state (dropout off): cosine with metapt's paper mode on the same batches",
                ["size", "authors' step", "metapt, HVP skipped", "metapt on other batches (its noise)"], checks)
    print()
    print_table("Hyper-step cost in plain PT steps, and the authors' step ÷ metapt's (medians of per-round ratios)",
                ["size", "|θ|", "PT step ms", "authors (higher)", "metapt paper", "speed-up", f"paper + skip (tol {SKIP_TOL:g})", "speed-up",
                 "bound α·λmax/2, HVPs skipped", "metapt fast", "speed-up", "fast + skip", "speed-up", "bound, skipped"], rows)


if __name__ == "__main__":
    main()
