"""The stages' logic, one function per stage kind, for every declared domain.

``stages/<kind>.py`` parses arguments and calls these; each reads the previous stage's folder and
writes its own atomically. What differs between domains is the body the domain declaration names
(``Domain.code``): this module does the rest (device, resume folder, MLflow record, the files of
the output and their formats) the same way for all of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from metapt.config import Profile
from metapt.domain import Run, domain, evaluation_file, lookup, processed_dir


def _plain(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def stage_params(profile: Profile, run: Run, kind: str) -> dict[str, Any]:
    """The values of the stage's declared params keys (what DVC tracks), plus the run: the resume key and MLflow params."""
    d = domain(run.domain)
    return {**{key: _plain(lookup(profile, key)) for key in d.params_keys(kind)}, "run": run.name}


def acquire(name: str, profile: Profile) -> Path:
    return domain(name).function("acquire")(profile)


def preprocess(name: str, profile: Profile) -> Path:
    return domain(name).function("preprocess")(profile)


def pretrain(profile: Profile, run: Run, progress: bool = True) -> Path:
    """PT one declared run: ``encoder.pt``, ``pretrain.json``, any arrays the method learned, and its φ trajectory."""
    import numpy as np

    from metapt import faults, jobs
    from metapt.io import atomic_dir, write_json
    from metapt.tracking import stage_run

    d = domain(run.domain)
    device = jobs.setup(profile)
    params = stage_params(profile, run, "pretrain")
    scratch = jobs.resume_dir(f"pretrain_{d.name}", run.name, params)
    with stage_run("pretrain", f"{d.name}/{run.name}", params, [processed_dir(d.name)], profile.name, output=run.pretrain_dir) as tracked:
        tracked.set_tags({"device": str(device)})
        result = d.function("pretrain")(profile, run, checkpoint_dir=scratch, hooks=[tracked.step_hook(journal=scratch / "steps.jsonl")], device=device, progress=progress)
        with atomic_dir(run.pretrain_dir) as tmp:
            jobs.save_weights(tmp / "encoder.pt", result.encoder.state_dict())
            for name, array in result.arrays.items():
                np.save(tmp / name, array)
            if result.trajectory is not None:
                result.trajectory.write(tmp / "phi.npz")
                tracked.log_artifact("phi.npz")
            write_json(tmp / "pretrain.json", {"run": run.name, "method": run.method, "setting": run.setting, "labels": run.labels,
                                               "seed": run.seed, **result.log})
            tracked.log_metrics(result.metrics)
            tracked.write(run.pretrain_dir)
        faults.reach("pretrain.renamed")
    jobs.clear_resume(scratch)
    return run.pretrain_dir


def finetune(profile: Profile, run: Run, progress: bool = False) -> Path:
    """Final FT of one declared run (every FT mode and FT seed the domain asks for); scores and FT weights."""
    import torch

    from metapt import jobs
    from metapt.domain import resolve
    from metapt.io import atomic_dir, write_json
    from metapt.tracking import stage_run

    d = domain(run.domain)
    device = jobs.setup(profile)
    encoder = jobs.initial_encoder(run, lambda: resolve(d.encoder)(profile)).to(device)
    inputs = [p for p in (run.pretrain_dir, processed_dir(d.name)) if p]
    with stage_run("finetune", f"{d.name}/{run.name}", stage_params(profile, run, "finetune"), inputs, profile.name, output=run.finetune_dir) as tracked:
        tracked.set_tags({"device": str(device)})
        t0 = time.perf_counter()
        results, states = d.function("finetune")(profile, run, encoder, device=device, progress=progress, log_metrics=tracked.log_metrics)
        tracked.log_metrics({"ft_wall_s": time.perf_counter() - t0})
        with atomic_dir(run.finetune_dir) as tmp:
            torch.save(states, tmp / "finetuned.pt")
            write_json(tmp / "finetune.json", {"run": run.name, "pt_run": run.pretrain_dir and str(run.pretrain_dir), "results": results})
            tracked.write(run.finetune_dir)
    return run.finetune_dir


def evaluate(name: str, profile: Profile) -> Path:
    """Gather every run's scores into ``results/<domain>/evaluation.json`` (``metapt.records.Evaluation``)."""
    domain(name).function("evaluate")(profile).write(evaluation_file(name))
    return evaluation_file(name)
