"""The schema of ``params.yaml``: two profiles of one pipeline, and the active one.

``params.yaml`` holds ``profiles.embedded`` and ``profiles.paper`` as YAML anchors and selects one with
``active: *embedded`` (or ``*paper``). DVC stages depend on ``active.<section>`` keys only, so editing
the inactive profile stales nothing. Every key is validated here; a typo is reported with its dotted
path and the keys (or values) allowed there.
"""

from __future__ import annotations

import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metapt.ecg.settings import ECGConfig
from metapt.ppi.settings import PPIConfig

PARAMS_FILE = Path("params.yaml")
PROFILES = ("embedded", "paper")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PPIData(_Strict):
    """Where the PPI graphs come from: the planted-structure generator, or Hu et al.'s bio archive."""

    source: Literal["synthetic", "bio"] = "synthetic"
    preset: Literal["discriminating", "weight_recovery", "conjunction"] = "discriminating"
    generator: dict[str, Any] = Field(default_factory=dict, description="SynthPPIConfig overrides, e.g. n_graphs")
    seed: int = 0
    url: str = "https://snap.stanford.edu/gnn-pretrain/data/bio_dataset.zip"
    sha256: str | None = Field(None, description="pinned archive checksum; null = trust on first use")
    size: int | None = None


class PPIGrid(_Strict):
    """Which PT runs exist. Baselines are access-free; ``access_methods`` also run per extra setting."""

    methods: list[Literal["uniform", "oracle"]] = ["uniform"]  # no_pt is always there: it needs no PT job
    access_methods: list[Literal["cotrain", "cotrain_pcgrad", "meta"]] = ["cotrain", "cotrain_pcgrad", "meta"]
    settings: list[Literal["partial", "heldout"]] = ["partial", "heldout"]
    heldout_fold: int = Field(0, ge=0, lt=4)


class PPIParams(PPIConfig):
    data: PPIData = PPIData()
    grid: PPIGrid = PPIGrid()

    @model_validator(mode="after")
    def _oracle_needs_truth(self) -> "PPIParams":
        if "oracle" in self.grid.methods and self.data.source != "synthetic":
            raise ValueError("grid.methods: 'oracle' needs planted ground truth, i.e. data.source: synthetic")
        return self


class ECGData(_Strict):
    source: Literal["synthetic", "ptbxl"] = "synthetic"
    n_records: int = Field(1000, ge=20, description="synthetic records")
    generator: dict[str, Any] = Field(default_factory=dict, description="SynthECGConfig overrides")
    seed: int = 0
    version: Literal["1.0.3", "1.0.1"] = "1.0.3"
    url: str | None = Field(None, description="mirror of the PhysioNet zip; null = PhysioNet")
    sha256: str | None = None
    size: int | None = None
    highpass: bool = False
    pad_to: int = Field(1024, ge=1000)


class ECGGrid(_Strict):
    methods: list[Literal["simclr"]] = ["simclr"]  # no_pt is always there: it needs no PT job
    labels: list[Annotated[int, Field(ge=2)]] = Field([10, 25, 50, 100, 250, 500], min_length=1, description="N: labelled examples for MetaFT and FT")
    partial_ft_labels: list[Annotated[int, Field(ge=2)]] = Field([], description="N_FT for partial access: meta-SimCLR that learned from N < N_FT labels is "
                                         "also fine-tuned on N_FT labels (every method is fine-tuned at N_FT, to compare)")

    def ft_labels(self, learned_from: int | None = None) -> list[int]:
        """The FT budgets of a run: every N and N_FT for the baselines; N, then each N_FT > N, for meta-SimCLR at N."""
        if learned_from is None:
            return sorted(set(self.labels) | set(self.partial_ft_labels))
        return [learned_from] + sorted(n for n in set(self.partial_ft_labels) if n > learned_from)


class ECGParams(ECGConfig):
    data: ECGData = ECGData()
    grid: ECGGrid = ECGGrid()

    @model_validator(mode="after")
    def _labels_fit_the_synthetic_pool(self) -> "ECGParams":
        # Checked here, not in the FT job after PT has run. Synthetic folds are dealt round robin
        # (synth._folds), so PT folds 1–9 hold all records but every tenth.
        if self.data.source == "synthetic":
            pool = self.data.n_records - self.data.n_records // 10
            too_big = [n for n in self.grid.ft_labels() if n > pool]
            if too_big:
                raise ValueError(f"grid.labels / grid.partial_ft_labels: {too_big} exceed the {pool} synthetic records in PT folds 1-9 "
                                 f"(data.n_records: {self.data.n_records}); raise data.n_records or lower N")
        return self


class Profile(_Strict):
    name: Literal["embedded", "paper"]
    seeds: list[int] = Field(min_length=1, description="PT seeds of the headline cells (full access; ECG)")
    setting_seeds: list[int] = Field(min_length=1, description="PT seeds of the extra PPI settings (partial, heldout)")
    torch_threads: int = Field(1, ge=1, description="intra-op threads per job: jobs run in parallel")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    ppi: PPIParams = PPIParams()
    ecg: ECGParams = ECGParams()


class Params(_Strict):
    profiles: dict[Literal["embedded", "paper"], Profile]
    active: Profile

    @model_validator(mode="after")
    def _active_is_a_profile(self) -> "Params":
        if self.profiles.get(self.active.name) != self.active:
            raise ValueError(f"active must be one of the profiles (active: *{self.active.name}); it differs from profiles.{self.active.name}")
        return self


class ParamsError(ValueError):
    """params.yaml is malformed; the message names each bad key and what is allowed there."""


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (to list the allowed keys); None if unknown."""
    ann: Any = model
    for key in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(key))
            if field is None:
                return None
            ann = field.annotation
        elif typing.get_origin(ann) is dict:
            ann = typing.get_args(ann)[1]  # ``key`` is a dict key: step into the value type
        elif isinstance(key, int) and typing.get_origin(ann) in (list, tuple):
            ann = typing.get_args(ann)[0]
        else:
            return None
        members = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and members:
            ann = members[0]
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def describe(err: ValidationError, root: type[BaseModel] = Params, source: str = "params.yaml") -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            owner = _model_at(root, loc[:-1])
            allowed = ", ".join(sorted(owner.model_fields)) if owner else "?"
            lines.append(f"{source}: {key}: unknown key; allowed keys here: {allowed}")
        else:
            lines.append(f"{source}: {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Parse and validate ``params.yaml``; raises :class:`ParamsError` naming each bad key."""
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found (run from the repository root)") from None
    try:
        return Params.model_validate(tree)
    except ValidationError as err:
        raise ParamsError(describe(err, source=str(path))) from None


def active_profile(path: str | os.PathLike = PARAMS_FILE) -> Profile:
    return load_params(path).active


def switch_profile(name: str, path: str | os.PathLike = PARAMS_FILE) -> bool:
    """Point ``active:`` at another profile, keeping the file otherwise byte-identical. True if it changed."""
    if name not in PROFILES:
        raise ParamsError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    path = Path(path)
    text = path.read_text()
    new, n = re.subn(r"(?m)^active:\s*\*\w+\s*$", f"active: *{name}", text)
    if n != 1:
        raise ParamsError(f"{path}: expected exactly one line 'active: *<profile>', found {n}")
    if new == text:
        return False
    from metapt.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(new)
    load_params(path)
    return True
