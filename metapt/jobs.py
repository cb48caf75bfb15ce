"""What every stage job shares: threads and device, a resumable scratch folder, saved weights.

Outputs are written into a temporary folder and renamed into place (``metapt.io.atomic_dir``), so
an interrupted job leaves no half output that DVC or Snakemake could mistake for a result. Resume
state lives outside the outputs, in ``.cache/resume/`` keyed by the run and a hash of its params:
Snakemake and DVC delete a stage's outputs before rerunning it, and a changed config must never
resume an old run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from metapt.config import Profile
from metapt.engine.checkpoint import load_checkpoint, save_checkpoint
from metapt.records import PhiTrajectory

RESUME_ROOT = Path(".cache/resume")


def setup(profile: Profile) -> torch.device:
    """Intra-op threads per job (jobs run side by side) and the device: ``auto`` takes CUDA when present."""
    torch.set_num_threads(profile.torch_threads)
    if profile.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if profile.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params: device is 'cuda' but no CUDA device is visible (use 'auto' or 'cpu')")
    return torch.device(profile.device)


def params_digest(params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def resume_dir(stage: str, run: str, params: Any) -> Path:
    return RESUME_ROOT / stage / f"{run}-{params_digest(params)}"


def clear_resume(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def save_weights(path: Path, state: dict[str, Any]) -> None:
    """Tensors only (and nested dicts of them), so ``torch.load(weights_only=True)`` reads it back."""
    save_checkpoint(path, {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()})


def initial_encoder(run, build) -> torch.nn.Module:
    """The encoder fine-tuning starts from: the PT run's weights, or (``no_pt``) ``build()`` under the run's seed."""
    if run.pretrain_dir is None:
        torch.manual_seed(run.seed)
        return build()
    encoder = build()
    encoder.load_state_dict(load_checkpoint(run.pretrain_dir / "encoder.pt"))
    return encoder


def pretrain_log(run) -> dict[str, Any]:
    """The PT run's ``pretrain.json`` (empty when the method does not pre-train)."""
    from metapt.io import read_json

    return {} if run.pretrain_dir is None else read_json(run.pretrain_dir / "pretrain.json")


def pt_summary(run, setting: str | None):
    """What the report needs of a PT run (``metapt.records.PTSummary``), from the files its PT job wrote."""
    from metapt.records import PTSummary

    pt = pretrain_log(run)
    weights, phi = run.pretrain_dir / "weights.npy", run.pretrain_dir / "phi.npz"
    return PTSummary(str(run.pretrain_dir), run.method, setting, run.seed, run.labels, pt.get("pt_steps"), pt.get("hyper_steps"),
                     str(weights) if weights.exists() else None, str(phi) if phi.exists() else None, pt.get("weights_vs_truth"),
                     pt.get("signal_ceiling_per_epoch"))


@dataclass
class PTResult:
    """What a domain's pretrain body hands the generic stage (``metapt.pipeline.pretrain``) to write.

    ``log`` goes into ``pretrain.json`` and must be deterministic (no wall times); ``metrics`` go to
    MLflow only; ``arrays`` are saved as ``.npy`` files beside the encoder.
    """

    encoder: torch.nn.Module
    log: dict[str, Any]
    arrays: dict[str, Any] = field(default_factory=dict)
    trajectory: PhiTrajectory | None = None
    metrics: dict[str, float] = field(default_factory=dict)
