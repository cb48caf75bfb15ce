"""Names and folders of the pipeline's runs, and the grid a profile expands to.

One place decides that PPI meta-PT with partial access, seed 2 lives in
``results/ppi/pretrain/meta-partial-s2`` and ECG meta-SimCLR with N = 25 labels, seed 0 in
``results/ecg/pretrain/meta_simclr-N25-s0``; ``dvc.yaml`` spells the same paths (a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metapt.config import Profile

RESULTS = Path("results")
DATA = Path("data")
DOMAINS = ("ppi", "ecg")
NO_PT = "no_pt"
PPI_ACCESS_FREE = (NO_PT, "uniform", "oracle")  # PT never sees FT data: one PT run serves every setting


@dataclass(frozen=True)
class Run:
    domain: str
    method: str
    seed: int
    setting: str | None = None  # PPI: full | partial | heldout
    labels: int | None = None  # ECG meta-SimCLR: N labelled examples seen in PT

    @property
    def name(self) -> str:
        if self.domain == "ppi":
            return f"{self.method}-{self.setting}-s{self.seed}"
        if self.labels is not None:
            return f"{self.method}-N{self.labels}-s{self.seed}"
        return f"{self.method}-s{self.seed}"

    @property
    def pretrain_dir(self) -> Path | None:
        """None for ``no_pt``: fine-tuning starts from the seeded random initialisation, no PT job."""
        return None if self.method == NO_PT else RESULTS / self.domain / "pretrain" / self.name

    @property
    def finetune_dir(self) -> Path:
        return RESULTS / self.domain / "finetune" / self.name


def raw_dir(domain: str) -> Path:
    return DATA / domain / "raw"


def processed_dir(domain: str) -> Path:
    return DATA / domain / "processed"


def evaluation_file(domain: str) -> Path:
    return RESULTS / domain / "evaluation.json"


REPORT_DIR = RESULTS / "report"


def ppi_runs(profile: Profile) -> list[Run]:
    g = profile.ppi.grid
    runs = [Run("ppi", m, s, "full") for m in (NO_PT, *g.methods) for s in profile.seeds]
    runs += [Run("ppi", m, s, "full") for m in g.access_methods for s in profile.seeds]
    runs += [Run("ppi", m, s, st) for m in g.access_methods for st in g.settings for s in profile.setting_seeds]
    return runs


def ecg_runs(profile: Profile) -> list[Run]:
    g = profile.ecg.grid
    runs = [Run("ecg", m, s) for m in (NO_PT, *g.methods) for s in profile.seeds]
    runs += [Run("ecg", "meta_simclr", s, labels=n) for n in g.labels for s in profile.seeds]
    return runs


def runs(profile: Profile, domain: str) -> list[Run]:
    """Every FT run the profile's grid declares; each has its PT run, except ``no_pt``."""
    return {"ppi": ppi_runs, "ecg": ecg_runs}[domain](profile)
