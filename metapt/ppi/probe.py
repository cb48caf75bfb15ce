"""The PPI signal-ceiling probe: rank the PT tasks by their full-batch alignment with the FT objective.

``signal_ceiling`` takes a PT state (during uniform PT, or any checkpoint) and the MetaFT split it would
learn from, and returns each PT task's alignment score ``a_t = ⟨∇θ ℓ̄_t, ∇θ L_val⟩`` (``metapt.engine.alignment``)
for two FT objectives: the head fitted on MetaFT-train and held fixed, and the same head re-fitted to θ
(the L2-logistic probe, through the head by the implicit function theorem). With the planted truth it
gives their AUC against the helpful tasks: the ceiling of any one-step task-weighting method at this
label budget. Without it (real data) it gives the ranking's stability: the mean Spearman correlation of
the through-head scores between bootstrap resamples of MetaFT (docs/ppi_signal.md).

The encoder is in eval mode (BN running statistics, no dropout) throughout, so the scores are a
deterministic function of θ and the data; all resamples share one pass over the PT set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from metapt.engine.alignment import choose_lambda, fit_l2_logistic, rank_stability, task_alignments, val_grad_through_head
from metapt.engine.hypergrad import module_modes
from metapt.ppi.graphs import collate_graphs, subset
from metapt.ppi.problem import MultitaskPPI


def _batches(graphs: Sequence, idx: np.ndarray, batch_size: int, device):
    collate = collate_graphs()
    for lo in range(0, len(idx), batch_size):
        yield collate(subset(graphs, idx[lo: lo + batch_size])).to(device)


def _ft_features(problem: MultitaskPPI, graphs: Sequence, idx: np.ndarray, device):
    """Features (with θ's graph) and FT labels of the graphs ``idx``, in one batch (eval mode: a graph's features do not
    depend on the others in its batch, so rows of one encoding serve every resample drawn from ``idx``)."""
    b = collate_graphs()(subset(graphs, idx)).to(device)
    return problem.encoder(b), problem.meta_labels(b).double()


def signal_ceiling(problem: MultitaskPPI, graphs: Sequence, pt_idx: np.ndarray, metaft_train: np.ndarray, metaft_val: np.ndarray,
                   truth: dict | None = None, bootstrap: int = 0, seed: int = 0, batch_size: int = 256,
                   device: torch.device | str = "cpu", progress: bool = False) -> dict:
    """Alignment scores of every PT task, their AUC against the planted truth (if given) and bootstrap stability.

    ``bootstrap`` > 1 resamples (MetaFT-train, MetaFT-val) with replacement that many times, with the L2
    strength chosen once on the real MetaFT-val loss (a resampled val split repeats its examples).
    """
    return signal_ceilings(problem, graphs, pt_idx, {"": (metaft_train, metaft_val)}, truth, bootstrap, seed, batch_size, device, progress)[""]


def signal_ceilings(problem: MultitaskPPI, graphs: Sequence, pt_idx: np.ndarray, metaft: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    truth: dict | None = None, bootstrap: int = 0, seed: int = 0, batch_size: int = 256,
                    device: torch.device | str = "cpu", progress: bool = False) -> dict[str, dict]:
    """:func:`signal_ceiling` for several MetaFT splits (label budgets) at once: one double backward over the PT set serves all.

    ``progress`` shows a bar over the PT batches (about an hour per probed epoch at paper size on a CPU).
    """
    device = torch.device(device)
    enc, head = problem.encoder, problem.pt_head
    params = [p for p in enc.parameters() if p.requires_grad]
    vectors, info = {}, {}
    with module_modes([enc, head], train=False):
        for key, (metaft_train, metaft_val) in metaft.items():
            rng = np.random.default_rng(seed)
            draws = [(metaft_train, metaft_val)] + [(rng.choice(metaft_train, len(metaft_train)), rng.choice(metaft_val, len(metaft_val)))
                                                    for _ in range(bootstrap)]
            union = np.unique(np.concatenate([metaft_train, metaft_val]))
            feats, labels = _ft_features(problem, graphs, union, device)  # one forward for all resamples of this split
            leaf = feats.detach().requires_grad_()
            for i, (tr, va) in enumerate(draws):
                r_tr, r_va = np.searchsorted(union, tr), np.searchsorted(union, va)
                x_tr, y_tr, x_va, y_va = leaf[r_tr], labels[r_tr], leaf[r_va], labels[r_va]
                if i == 0:
                    lam, val_loss = choose_lambda(x_tr.detach(), y_tr, x_va.detach(), y_va)
                heads = fit_l2_logistic(x_tr.detach(), y_tr, lam)
                (total,), (fixed,) = val_grad_through_head(x_tr, y_tr, x_va, y_va, heads, [leaf])  # d/d(features): head-sized work
                wanted = {(key, "through_head", i): total} | ({(key, "fixed_head", 0): fixed} if i == 0 else {})
                for name, g in wanted.items():  # then one backward through the encoder per vector
                    vectors[name] = list(torch.autograd.grad(feats, params, grad_outputs=g, retain_graph=True))
                if i == 0:
                    info[key] = dict(lam=lam, metaft_val_loss=val_loss, newton_iterations=heads.iterations,
                                     n_metaft=[int(len(metaft_train)), int(len(metaft_val))])
            del feats, leaf

        def per_task(batch):
            return problem.per_task_pt_loss(batch), batch.num_graphs

        batches = tqdm(_batches(graphs, pt_idx, batch_size, device), total=-(-len(pt_idx) // batch_size), leave=False, unit="batch",
                       desc=f"probe: {len(vectors)} alignments of {len(problem.pt_columns)} PT tasks", disable=not progress)
        scores = {k: v.cpu().numpy() for k, v in task_alignments(per_task, params, batches, vectors).items()}
    helpful = None if truth is None else np.asarray(truth["helpful_mask"], dtype=bool)[problem.pt_columns.numpy()]
    return {key: _summary(info[key], {(obj, i): v for (k, obj, i), v in scores.items() if k == key}, bootstrap, helpful) for key in metaft}


def _summary(info: dict, scores: dict, bootstrap: int, helpful: np.ndarray | None) -> dict:
    out = {**info, "scores_fixed_head": scores["fixed_head", 0].tolist(), "scores_through_head": scores["through_head", 0].tolist()}
    if bootstrap > 1:
        out["stability_through_head"] = rank_stability([scores["through_head", i] for i in range(1, bootstrap + 1)])
    if helpful is not None:
        from sklearn.metrics import roc_auc_score

        out["auc_fixed_head"] = float(roc_auc_score(helpful, scores["fixed_head", 0]))
        out["auc_through_head"] = float(roc_auc_score(helpful, scores["through_head", 0]))
        if bootstrap:
            out["auc_through_head_bootstrap"] = [float(roc_auc_score(helpful, scores["through_head", i])) for i in range(1, bootstrap + 1)]
    return out


SUMMARY_KEYS = ("auc_fixed_head", "auc_through_head", "stability_through_head", "auc_through_head_bootstrap", "lam", "metaft_val_loss", "n_metaft")


class CeilingProbe:
    """Hook: :func:`signal_ceilings` at the end of the chosen PT epochs, on MetaFT at each label budget (``metaft``: column → split).

    Journaled with each checkpoint (``metapt.engine.JournaledHook``), so a resumed run keeps the epochs it
    probed before the kill. The probe draws no random numbers from torch (eval mode) and the global RNG
    state is restored around it anyway, so a probed run's weights equal an unprobed one's.
    """

    def __init__(self, problem: MultitaskPPI, graphs: Sequence, pt_idx: np.ndarray, metaft: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 truth: dict | None, epochs: Sequence[int], steps_per_epoch: int, bootstrap: int = 0, batch_size: int = 256, seed: int = 0,
                 progress: bool = False):
        self.problem, self.graphs, self.pt_idx, self.metaft = problem, graphs, pt_idx, dict(metaft)
        self.truth, self.epochs, self.spe = truth, set(epochs), steps_per_epoch
        self.bootstrap, self.batch_size, self.seed, self.progress = bootstrap, batch_size, seed, progress
        self.per_epoch: list[dict] = []

    def __call__(self, record) -> None:
        epoch = record.step // self.spe
        if record.step % self.spe or epoch not in self.epochs:
            return
        state = torch.get_rng_state()
        device = next(self.problem.encoder.parameters()).device
        res = signal_ceilings(self.problem, self.graphs, self.pt_idx, self.metaft, truth=self.truth, bootstrap=self.bootstrap,
                              seed=1000 * self.seed + epoch, batch_size=self.batch_size, device=device, progress=self.progress)
        torch.set_rng_state(state)
        for column, r in res.items():
            self.per_epoch.append({"epoch": epoch, "step": record.step, "column": column, **{k: r[k] for k in SUMMARY_KEYS if k in r}})

    def state_dict(self) -> dict:
        return {"per_epoch": [dict(e) for e in self.per_epoch]}

    def load_state_dict(self, state: dict) -> None:
        self.per_epoch = [dict(e) for e in state["per_epoch"]]
