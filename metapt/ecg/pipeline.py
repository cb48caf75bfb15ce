"""ECG model stages: SimCLR or meta-SimCLR pre-training, fine-tuning at N labels, the test AUROCs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from metapt import jobs, runs
from metapt.config import Profile
from metapt.ecg.experiment import evaluate as _finetune_and_test
from metapt.ecg.experiment import pretrain as _pretrain
from metapt.ecg.model import ResNet1d
from metapt.ecg.processed import load_processed
from metapt.io import atomic_dir, read_json
from metapt.tracking import stage_run


def _encoder(profile: Profile) -> ResNet1d:
    m = profile.ecg.model
    return ResNet1d(widths=m.widths, strides=m.strides, blocks=m.blocks, kernel=m.kernel, stem_stride=m.stem_stride)


def pretrain(profile: Profile, run: runs.Run, progress: bool = True) -> Path:
    """SimCLR PT with fixed augmentations, or meta-SimCLR whose warp learns from ``run.labels`` labels."""
    device = jobs.setup(profile)
    cfg = profile.ecg
    x, y, pt_idx, _ = load_processed()
    n_labels = run.labels or max(cfg.grid.labels)  # the baselines' PT never reads labels
    params = {"model": cfg.model.model_dump(), "pretrain": cfg.pretrain.model_dump(), "run": run.name}
    scratch = jobs.resume_dir("pretrain_ecg", run.name, params)
    with stage_run("pretrain", f"ecg/{run.name}", params, [runs.processed_dir("ecg")], profile.name, output=run.pretrain_dir) as tracked:
        enc, log = _pretrain(run.method, x, y, pt_idx, n_labels, cfg, run.seed, progress=progress, hooks=[tracked.step_hook()],
                             checkpoint_dir=scratch, device=device)
        with atomic_dir(run.pretrain_dir) as tmp:
            jobs.save_weights(tmp / "encoder.pt", enc.state_dict())
            log = {"run": run.name, "method": run.method, "labels": run.labels, "seed": run.seed, "device": str(device), **log}
            if run.method == "meta_simclr":
                steps, stds = np.asarray(log["trajectory_steps"]), np.asarray(log["warp_std_trajectory"])
                np.savez_compressed(tmp / "warp_std.npz", steps=steps, std=stds)
                tracked.log_artifact("warp_std.npz")
            jobs.finish_pretrain(tmp, tracked, log)
    jobs.clear_resume(scratch)
    return run.pretrain_dir


def finetune(profile: Profile, run: runs.Run, progress: bool = False) -> Path:
    """Final FT at every N and N_FT of the grid (baselines), or at the run's own N and each larger N_FT (meta-SimCLR)."""
    device = jobs.setup(profile)
    cfg = profile.ecg
    x, y, pt_idx, test_idx = load_processed()
    encoder = jobs.initial_encoder(run, lambda: _encoder(profile)).to(device)
    labels = cfg.grid.ft_labels(run.labels)
    params = {"finetune": {k: v.model_dump() for k, v in cfg.finetune.items()}, "ft_seeds": list(cfg.ft_seeds), "labels": labels, "run": run.name}
    with stage_run("finetune", f"ecg/{run.name}", params, [p for p in (run.pretrain_dir, runs.processed_dir("ecg")) if p], profile.name, output=run.finetune_dir) as tracked:
        results, states = {}, {}
        t0 = time.perf_counter()
        for n in labels:
            sink: dict[str, Any] = {}
            results[f"N={n}"] = _finetune_and_test(encoder, x, y, pt_idx, test_idx, n, cfg, run.seed, progress=progress, states=sink, device=device)
            states.update({f"N={n}/{k}": v for k, v in sink.items()})
            tracked.log_metrics({f"N={n}/{mode}/test_macro_auroc": ev["test_macro_auroc"] for mode, ev in results[f"N={n}"].items()})
        return jobs.write_finetune(run, tracked, results, states, time.perf_counter() - t0)


def partial_method(run: runs.Run) -> str:
    """The table row of a meta-SimCLR run fine-tuned on more labels than it learned from: ``meta_simclr@25``."""
    return f"{run.method}@{run.labels}"


def evaluation(profile: Profile) -> dict[str, Any]:
    rows, pretrain_log = [], []
    for run in runs.ecg_runs(profile):
        ft = read_json(run.finetune_dir / "finetune.json")
        pt = jobs.pretrain_log(run)
        for setting, modes in ft["results"].items():
            method = run.method if setting == f"N={run.labels}" or run.labels is None else partial_method(run)
            for mode, ev in modes.items():
                rows.append({"domain": "ecg", "setting": setting, "method": method, "seed": run.seed, "mode": mode, "metric": "test_macro_auroc",
                             "value": ev["test_macro_auroc"], "n_ft_seeds": len(ev["runs"]), "pt_run": run.pretrain_dir and str(run.pretrain_dir), "ft_run": str(run.finetune_dir)})
        if run.pretrain_dir is None:
            continue
        pretrain_log.append({"run": str(run.pretrain_dir), "method": run.method, "setting": None if run.labels is None else f"N={run.labels}", "seed": run.seed,
                             "labels": run.labels, "pt_wall_s": pt.get("pt_wall_s"), "pt_steps": pt.get("pt_steps"), "hyper_steps": pt.get("hyper_steps"),
                             "weights": None, "trajectory": None, "weights_vs_truth": None,
                             "warp_std_trajectory": pt.get("warp_std_trajectory"), "trajectory_steps": pt.get("trajectory_steps")})
    return {"domain": "ecg", "profile": profile.name, "source": profile.ecg.data.source, "truth": None, "rows": rows, "pretrain": pretrain_log}
