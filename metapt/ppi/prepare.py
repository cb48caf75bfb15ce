"""PPI data stages: acquire (generate the planted-structure graphs, or download Hu et al.'s bio
archive) and preprocess (one graphs file for both, the paper's splits, the planted truth)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from metapt import runs
from metapt.config import Profile
from metapt.io import atomic_dir, read_json, write_json
from metapt.ppi import synth
from metapt.ppi.legacy import fetch_bio, load_converted
from metapt.ppi.processed import GRAPHS, SPLITS, TRUTH
from metapt.ppi.splits import make_splits, species_ids


def acquire(profile: Profile) -> Path:
    """Synthetic: generate the planted-structure graphs. Bio: download, verify, convert (resumable)."""
    d, out = profile.ppi.data, runs.raw_dir("ppi")
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


def preprocess(profile: Profile) -> Path:
    """One graphs file for both sources, the paper's splits, and (synthetic) the planted truth."""
    raw = runs.raw_dir("ppi")
    source = read_json(raw / "source.json")
    graphs = load_converted(raw / source["graphs"])
    splits = make_splits(species_ids(graphs))
    with atomic_dir(runs.processed_dir("ppi")) as tmp:
        shutil.copy2(raw / source["graphs"], tmp / GRAPHS)
        np.savez(tmp / SPLITS, **{f.name: np.asarray(getattr(splits, f.name)) for f in dataclasses.fields(splits)})
        if (raw / synth.TRUTH_FILE).exists():
            (tmp / TRUTH).write_text((raw / synth.TRUTH_FILE).read_text())
        write_json(tmp / "manifest.json", {"n_graphs": len(graphs), "source": source, "splits": {f.name: int(np.size(getattr(splits, f.name))) for f in dataclasses.fields(splits)}})
    return runs.processed_dir("ppi")
