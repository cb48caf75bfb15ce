"""PPI model stages: pretrain one (method, setting, seed), fine-tune it, gather the test AUROCs.

Each function reads the previous stage's folder and writes its own; ``stages/*.py`` only parse
arguments and call these.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from metapt import jobs, runs
from metapt.config import Profile
from metapt.evaluate import weights_vs_truth
from metapt.io import atomic_dir, read_json
from metapt.ppi.experiment import evaluate as _finetune_and_test
from metapt.ppi.experiment import pretrain as _pretrain
from metapt.ppi.experiment import with_ft_budget
from metapt.ppi.model import GIN
from metapt.ppi.processed import TRUTH, load_processed
from metapt.ppi.splits import PPISplits
from metapt.tracking import stage_run


def _budgeted(splits: PPISplits, profile: Profile) -> PPISplits:
    return with_ft_budget(splits, profile.ppi.ft_budget)


def _encoder(profile: Profile) -> GIN:
    m = profile.ppi.model
    return GIN(m.layers, m.hidden, m.dropout)


# ---------------------------------------------------------------------------------------- pretrain
def pretrain(profile: Profile, run: runs.Run, progress: bool = True) -> Path:
    """PT one (method, setting, seed); writes encoder.pt, pretrain.json, and learned weights/φ trajectory."""
    device = jobs.setup(profile)
    cfg = profile.ppi
    graphs, splits, truth = load_processed()
    splits = _budgeted(splits, profile)
    params = {"model": cfg.model.model_dump(), "pretrain": cfg.pretrain.model_dump(), "ft_budget": cfg.ft_budget, "run": run.name}
    scratch = jobs.resume_dir("pretrain_ppi", run.name, params)
    with stage_run("pretrain", f"ppi/{run.name}", params, [runs.processed_dir("ppi")], profile.name, output=run.pretrain_dir) as tracked:
        pt = _pretrain(run.method, graphs, splits, cfg, run.seed, access=run.setting, fold=cfg.grid.heldout_fold, truth=truth,
                       checkpoint_dir=scratch, hooks=[tracked.step_hook()], device=device, progress=progress)
        with atomic_dir(run.pretrain_dir) as tmp:
            jobs.save_weights(tmp / "encoder.pt", pt.encoder.state_dict())
            log = {"run": run.name, "method": run.method, "setting": run.setting, "seed": run.seed, "device": str(device), **pt.log}
            if pt.weights is not None:
                np.save(tmp / "weights.npy", pt.weights)
                if truth is not None:
                    ok = np.isfinite(pt.weights)
                    log["weights_vs_truth"] = weights_vs_truth(pt.weights[ok], np.asarray(truth["helpful_mask"])[ok],
                                                               [k for k, o in zip(truth["pt_kind"], ok) if o], np.asarray(truth["helpfulness"])[ok])
                    tracked.log_metrics({f"final/{k}": v for k, v in log["weights_vs_truth"].items()})
            if pt.trainer is not None and run.method in ("meta", "agnostic"):
                pt.trainer.save_trajectory(tmp / "phi.npz")
                tracked.log_artifact("phi.npz")
            jobs.finish_pretrain(tmp, tracked, log)
    jobs.clear_resume(scratch)
    return run.pretrain_dir


# ---------------------------------------------------------------------------------------- finetune
def task_sets(profile: Profile, run: runs.Run) -> list[str]:
    """Which FT label sets this PT run is evaluated on: all 40 tasks, and/or the held-out fold's 10.

    An access-free PT run (it never saw FT data) serves every setting, so it is also fine-tuned on the
    held-out tasks; a run meta-trained for the held-out setting is evaluated only there.
    """
    if run.setting == "heldout":
        return ["heldout"]
    if run.method in runs.PPI_ACCESS_FREE and "heldout" in profile.ppi.grid.settings:
        return ["all", "heldout"]
    return ["all"]


def finetune(profile: Profile, run: runs.Run, progress: bool = False) -> Path:
    """Final FT of a PT run per FT mode and seed (best validation epoch); test AUROCs and FT weights."""
    device = jobs.setup(profile)
    cfg = profile.ppi
    graphs, splits, _ = load_processed()
    splits = _budgeted(splits, profile)
    encoder = jobs.initial_encoder(run, lambda: _encoder(profile)).to(device)
    params = {"finetune": {k: v.model_dump() for k, v in cfg.finetune.items()}, "ft_seeds": list(cfg.ft_seeds), "run": run.name}
    with stage_run("finetune", f"ppi/{run.name}", params, [p for p in (run.pretrain_dir, runs.processed_dir("ppi")) if p], profile.name, output=run.finetune_dir) as tracked:
        results, states = {}, {}
        t0 = time.perf_counter()
        for name in task_sets(profile, run):
            access = "heldout" if name == "heldout" else "full"
            sink: dict[str, Any] = {}
            results[name] = _finetune_and_test(encoder, graphs, splits, cfg, access=access, fold=cfg.grid.heldout_fold, device=device, progress=progress, states=sink)
            states.update({f"{name}/{k}": v for k, v in sink.items()})
            for mode, ev in results[name].items():
                tracked.log_metrics({f"{name}/{mode}/test_hard_auroc": ev["test_hard"], f"{name}/{mode}/test_easy_auroc": ev["test_easy"]})
        return jobs.write_finetune(run, tracked, results, states, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------- evaluate
METRICS = {"test_hard": "test_hard_auroc", "test_easy": "test_easy_auroc"}


def evaluation(profile: Profile) -> dict[str, Any]:
    """Every (setting, method, PT seed, FT mode, metric) value, with the runs behind it (for report and lineage)."""
    rows, pretrain_log = [], []
    truth = runs.processed_dir("ppi") / TRUTH
    for run in runs.ppi_runs(profile):
        ft = read_json(run.finetune_dir / "finetune.json")
        pt = jobs.pretrain_log(run)
        columns = {"all": ["full"] + ([s for s in profile.ppi.grid.settings if s == "partial"] if run.method in runs.PPI_ACCESS_FREE else []),
                   "heldout": ["heldout"]}
        for task_set, modes in ft["results"].items():
            settings = [run.setting] if run.setting != "full" else columns[task_set]
            for setting in settings:
                for mode, ev in modes.items():
                    for key, metric in METRICS.items():
                        rows.append({"domain": "ppi", "setting": setting, "method": run.method, "seed": run.seed, "mode": mode, "metric": metric,
                                     "value": ev[key], "n_ft_seeds": len(ev["runs"]), "pt_run": run.pretrain_dir and str(run.pretrain_dir), "ft_run": str(run.finetune_dir)})
        if run.pretrain_dir is None:
            continue
        weights, phi = run.pretrain_dir / "weights.npy", run.pretrain_dir / "phi.npz"
        pretrain_log.append({"run": str(run.pretrain_dir), "method": run.method, "setting": run.setting, "seed": run.seed, "labels": None,
                             "pt_wall_s": pt.get("pt_wall_s"), "pt_steps": pt.get("pt_steps"), "hyper_steps": pt.get("hyper_steps"),
                             "weights": str(weights) if weights.exists() else None, "trajectory": str(phi) if phi.exists() else None,
                             "weights_vs_truth": pt.get("weights_vs_truth"), "warp_std_trajectory": None, "trajectory_steps": None})
    return {"domain": "ppi", "profile": profile.name, "source": profile.ppi.data.source, "truth": str(truth) if truth.exists() else None,
            "rows": rows, "pretrain": pretrain_log}
