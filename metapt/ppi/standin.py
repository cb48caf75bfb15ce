"""A full-size, format-exact stand-in of Hu et al.'s ``bio_dataset.zip``, made by the synthetic generator.

The real archive's supervised part: 88,000 ego-graphs, each with 5,000 PT-task and 40 FT-task labels
(≈ 443 M labels; int64 as PyG 1.0.3 stored them, 3.55 GB), eight species with human as the test
species, in the legacy ``(data, slices)`` pickle (``metapt.ppi.legacy``). The graphs come from
``metapt.ppi.synth`` (the ``discriminating`` preset at 5,000 PT tasks), so the planted structure is
there too. Left out: the unsupervised part (306,925 unlabelled graphs the paper does not read) is a
small placeholder, named so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch_geometric.data import InMemoryDataset

from metapt.ppi import synth
from metapt.ppi.legacy import LABEL_KEYS, save_legacy, write_bio_zip

N_GRAPHS, N_PT_TASKS, N_FT_TASKS = 88_000, 5_000, 40
ARCHIVE = "bio_dataset.zip"


def legacy_tables(n_graphs: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The generator's graphs as PyG 1.0.3 collated them: labels flat int64, one row of T per graph."""
    graphs, _ = synth.generate(synth.preset("discriminating", n_graphs=n_graphs, n_pt_tasks=N_PT_TASKS, n_ft_tasks=N_FT_TASKS), seed=seed)
    data, slices = InMemoryDataset.collate(graphs)
    del graphs
    attrs = data.to_dict()
    for k in LABEL_KEYS:  # [G, T] uint8 in the PyG-2 layout → [G·T] int64 (the release's layout and dtype)
        width = attrs[k].shape[1]
        attrs[k] = attrs[k].reshape(-1).to(torch.int64)
        slices[k] = torch.arange(n_graphs + 1, dtype=torch.int64) * width
    return attrs, slices


def build(out_dir: str | Path, scale: float = 1.0) -> list[Path]:
    """Write ``out_dir/bio_dataset.zip`` with ``round(88,000 · scale)`` graphs (at least 16); return the files."""
    out = Path(out_dir)
    n = max(16, round(N_GRAPHS * scale))
    attrs, slices = legacy_tables(n)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        pt, placeholder = Path(tmp) / "supervised.pt", Path(tmp) / "unsupervised.pt"
        save_legacy(attrs, slices, pt)
        del attrs, slices
        placeholder.write_bytes(b"metapt stand-in: the unsupervised part (306,925 graphs) is not used by the paper and left out\n")
        return [write_bio_zip(out / ARCHIVE, pt, unsupervised=placeholder)]
