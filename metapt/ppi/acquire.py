"""Stage acquire_ppi: generate the planted-structure graphs (embedded), or download, verify and
convert Hu et al.'s bio archive (paper). The only PPI module that imports the download code."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from metapt.config import Profile
from metapt.domain import raw_dir
from metapt.download import download, safe_extract
from metapt.io import atomic_dir, write_json
from metapt.ppi import synth
from metapt.ppi.legacy import BIO_URL, LEGACY_MEMBER, PAPER_SPECIES, convert_legacy


@dataclass(frozen=True)
class FetchedBio:
    """The converted file and the archive checksum to pin in config (trust on first use)."""

    path: Path
    sha256: str
    size: int


def fetch_bio(url: str = BIO_URL, data_dir: str | os.PathLike = "data/bio", sha256: str | None = None,
              size: int | None = None, *, progress: bool = True, n_pt_tasks: int = 5000, n_ft_tasks: int = 40,
              require_species: Iterable[int] | None = PAPER_SPECIES) -> FetchedBio:
    """Download → verify → safe-extract the supervised file → convert → remove the extraction; each step is skipped when done.

    Outputs are named by the archive's hash prefix, so a different archive never reuses stale ones. With
    no pinned ``sha256`` the archive is unpickled unverified, but only with ``weights_only=True``, and
    it is deleted if it fails to extract or convert; a pinned archive is kept (it is the expected file).
    """
    data_dir = Path(data_dir)
    got = download(url, data_dir / (Path(urlparse(url).path).name or "bio_dataset.zip"), sha256, size, progress)
    tag = got.sha256[:12]
    out = data_dir / f"bio_supervised_{tag}.pt"
    raw = data_dir / f"bio_dataset_{tag}"
    if not out.exists():
        try:
            if not (raw / LEGACY_MEMBER).exists():
                safe_extract(got.path, raw, members=[LEGACY_MEMBER])
            convert_legacy(raw / LEGACY_MEMBER, out, n_pt_tasks=n_pt_tasks, n_ft_tasks=n_ft_tasks,
                           require_species=require_species)
        except Exception:
            if sha256 is None:  # unpinned and unusable: do not trust it on the next call
                got.path.unlink(missing_ok=True)
            raise
    # The zip keeps the original; the extracted pickle (4.1 GB at full size) would otherwise be hashed and
    # cached with the stage's output (docs/rehearsal.md). Also after a kill between conversion and here.
    shutil.rmtree(raw, ignore_errors=True)
    return FetchedBio(out, got.sha256, got.size)


def acquire(profile: Profile) -> Path:
    """Synthetic: generate the planted-structure graphs. Bio: download, verify, convert (resumable)."""
    d, out = profile.ppi.data, raw_dir("ppi")
    if d.source == "bio":
        out.mkdir(parents=True, exist_ok=True)  # kept between attempts: the download resumes
        got = fetch_bio(d.url, out, d.sha256, d.size)
        write_json(out / "source.json", {"source": "bio", "url": d.url, "sha256": got.sha256, "size": got.size, "graphs": got.path.name})
        return out
    graphs, truth = synth.generate(synth.preset(d.preset, **d.generator), seed=d.seed)
    with atomic_dir(out) as tmp:
        synth.write_dataset(graphs, truth, tmp)
        write_json(tmp / "source.json", {"source": "synthetic", "preset": d.preset, "generator": d.generator, "seed": d.seed, "graphs": synth.DATA_FILE})
    return out
