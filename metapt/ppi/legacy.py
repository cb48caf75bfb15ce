"""The real bio data: convert the legacy PyG-1.0.3 file to PyG-2 format once, load as EgoGraphs (the download is ``metapt.ppi.acquire``).

Hu et al. released only ``dataset/supervised/processed/geometric_data_processed.pt``, a pickled
``(data, slices)`` tuple written by PyG 1.0.3 (the raw→processed code never was). How it loads under
torch 2.13 + PyG 2.8.1:

* ``torch.load(p, weights_only=True)`` works once ``torch_geometric`` is imported: PyG registers
  ``torch_geometric.data.data.Data`` with ``torch.serialization.add_safe_globals`` at import, and the
  legacy pickle references exactly that name. No extra allowlisting is needed.
* The object it yields keeps the old attributes in ``__dict__`` (no ``_store``), so any item access
  raises "created by an older version of PyG". We read ``vars(data)`` and rebuild with
  ``Data.from_dict``, keeping the old ``slices`` (PyG 1 and 2 both store graphs un-incremented).
* We save ``(data.to_dict(), slices)`` — plain tensors and dicts — with ``torch.save`` and load it with
  ``torch.load(weights_only=True)`` ourselves, not ``InMemoryDataset.load``: PyG's loader silently
  retries with ``weights_only=False`` on failure.

The writer of the legacy format is here too (:func:`save_legacy`, :func:`write_bio_zip`): the tests' fixtures
and the full-size stand-in (``metapt.ppi.standin``) are written by it, without old PyG.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch
import torch_geometric  # noqa: F401  (registers the legacy Data class as a weights_only safe global)
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from metapt.io import atomic_path
from metapt.ppi.graphs import EgoGraph, EgoGraphUnoffset

BIO_URL = "https://snap.stanford.edu/gnn-pretrain/data/bio_dataset.zip"
LEGACY_MEMBER = "dataset/supervised/processed/geometric_data_processed.pt"
PAPER_SPECIES = (3702, 6239, 511145, 7227, 10090, 4932, 7955, 9606)  # train/val species + human (test)
UNSUPERVISED_MEMBER = "dataset/unsupervised/processed/geometric_data_processed.pt"
LABEL_KEYS = ("go_target_pretrain", "go_target_downstream")
REQUIRED_KEYS = ("x", "edge_index", "edge_attr", "species_id", "center_node_idx") + LABEL_KEYS
_PYG1_MODULE = "torch_geometric.data.data"


class InvariantError(ValueError):
    """The legacy data breaks a structural invariant of the bio format (named, with the graph index)."""

    def __init__(self, invariant: str, detail: str, graph: int | None = None):
        self.invariant, self.graph = invariant, graph
        where = f" at graph {graph}" if graph is not None else ""
        super().__init__(f"bio data invariant '{invariant}' violated{where}: {detail}")


def load_legacy(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Read the legacy ``(data, slices)`` pickle with ``weights_only=True``; return plain attribute and slice dicts."""
    out = torch.load(path, weights_only=True, map_location="cpu")
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise ValueError(f"{path} is not a (data, slices) tuple")
    data, slices = out
    attrs = vars(data)
    if "_store" in attrs:  # already a PyG-2 object
        attrs = data.to_dict()
    return {k: v for k, v in attrs.items() if v is not None}, dict(slices)


def _graph_at(bounds: Tensor, pos: int) -> int:
    return int(torch.searchsorted(bounds, torch.tensor([pos]), right=True)[0]) - 1


def check_invariants(attrs: dict[str, Tensor], slices: dict[str, Tensor], n_pt_tasks: int = 5000,
                     n_ft_tasks: int = 40, require_species: Iterable[int] | None = None) -> int:
    """Check the bio format (docs/background.md, "Per-graph invariants"); return the number of graphs.

    Vectorised over the concatenated tensors (the full set is 88k graphs), mapping the first offending
    row back to its graph through ``slices``.
    """
    if missing := [k for k in REQUIRED_KEYS if k not in attrs or k not in slices]:
        raise InvariantError("keys", f"missing {missing}")
    g = len(slices["x"]) - 1
    for k in REQUIRED_KEYS:
        s, dim = slices[k], (1 if k == "edge_index" else 0)
        if len(s) != g + 1 or s[0] != 0 or bool((s[1:] < s[:-1]).any()) or s[-1] != attrs[k].shape[dim]:
            raise InvariantError("slices", f"slices['{k}'] do not partition '{k}' into {g} graphs")
    _check_graphs(attrs, slices)
    _check_labels(attrs, slices, n_pt_tasks, n_ft_tasks, require_species)
    return g


def _check_graphs(attrs: dict[str, Tensor], slices: dict[str, Tensor]) -> None:
    x, ei, ea = attrs["x"], attrs["edge_index"], attrs["edge_attr"]
    nb, eb = slices["x"], slices["edge_index"]
    if x.dim() != 2 or x.shape[1] != 1:
        raise InvariantError("x is ones [N,1]", f"x has shape {tuple(x.shape)}")
    if (bad := (x != 1).nonzero()).numel():
        raise InvariantError("x is ones [N,1]", f"x[{int(bad[0, 0])}] != 1", _graph_at(nb, int(bad[0, 0])))
    if ea.dim() != 2 or ea.shape[1] != 9 or ei.dim() != 2 or ei.shape[0] != 2 or ea.shape[0] != ei.shape[1]:
        detail = f"edge_index {tuple(ei.shape)}, edge_attr {tuple(ea.shape)}; want [2,E], [E,9]"
        raise InvariantError("edge shapes", detail)
    if not torch.equal(slices["edge_attr"], eb):
        raise InvariantError("edge shapes", "edge_attr and edge_index slices differ")
    if (bad := (ea[:, 7:] != 0).any(1).nonzero()).numel():
        raise InvariantError("edge_attr channels 7,8 are zero", f"edge {int(bad[0])}", _graph_at(eb, int(bad[0])))
    if (odd := ((eb[1:] - eb[:-1]) % 2).nonzero()).numel():
        raise InvariantError("edges as consecutive reverse pairs", "odd number of directed edges", int(odd[0]))
    if (bad := (ei[:, 0::2] != ei[:, 1::2].flip(0)).any(0).nonzero()).numel():
        e = 2 * int(bad[0])
        raise InvariantError("edges as consecutive reverse pairs", f"edges {e},{e + 1}", _graph_at(eb, e))
    n = nb[1:] - nb[:-1]
    if (bad := ((ei < 0) | (ei >= n.repeat_interleave(eb[1:] - eb[:-1]))).any(0).nonzero()).numel():
        raise InvariantError("edge_index within graph", f"edge {int(bad[0])}", _graph_at(eb, int(bad[0])))
    for k in ("center_node_idx", "species_id"):
        if (bad := (slices[k][1:] - slices[k][:-1] != 1).nonzero()).numel():
            raise InvariantError(f"one {k} per graph", f"{k} count != 1", int(bad[0]))
    c = attrs["center_node_idx"].view(-1)
    if (bad := ((c < 0) | (c >= n)).nonzero()).numel():
        i = int(bad[0])
        raise InvariantError("center_node_idx within graph", f"centre {int(c[i])} of {int(n[i])} nodes", i)


def _check_labels(attrs: dict[str, Tensor], slices: dict[str, Tensor], n_pt_tasks: int, n_ft_tasks: int,
                  require_species: Iterable[int] | None) -> None:
    sp = attrs["species_id"].view(-1)
    if (bad := (sp <= 0).nonzero()).numel():
        raise InvariantError("species ids present", f"species_id {int(sp[bad[0]])}", int(bad[0]))
    if missing := sorted(set(require_species or ()) - set(sp.unique().tolist())):
        raise InvariantError("species ids present", f"no graph of species {missing}")
    for k, width in zip(LABEL_KEYS, (n_pt_tasks, n_ft_tasks)):
        y, s = attrs[k], slices[k]
        per_row = y[0].numel() if y.dim() > 1 and len(y) else 1  # [G*T] or [G,T] layouts
        counts = (s[1:] - s[:-1]) * per_row
        if (bad := (counts != width).nonzero()).numel():
            raise InvariantError(f"{k} width {width}", f"{int(counts[bad[0]])} labels", int(bad[0]))
        if len(y) and (y.min() < 0 or y.max() > 1):  # cheap test first: the full set has 440M labels
            rows = y.reshape(len(y), -1)
            r = int(((rows != 0) & (rows != 1)).any(1).nonzero()[0])
            value = int(rows[r][(rows[r] != 0) & (rows[r] != 1)][0])
            raise InvariantError(f"{k} is 0/1", f"value {value}", _graph_at(s, r))


def convert_legacy(src: str | os.PathLike, dst: str | os.PathLike, *, n_pt_tasks: int = 5000, n_ft_tasks: int = 40,
                   require_species: Iterable[int] | None = None) -> Path:
    """Load, check, cast labels to uint8 and save once in PyG-2 format atomically to a new ``dst``."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"refusing to overwrite the original {src}; choose a new destination")
    attrs, slices = load_legacy(src)
    check_invariants(attrs, slices, n_pt_tasks, n_ft_tasks, require_species)
    for k in LABEL_KEYS:
        attrs[k] = attrs[k].to(torch.uint8)  # int64 labels of the full set take 3.5 GB
    data = Data.from_dict(attrs)
    with atomic_path(dst) as tmp:
        torch.save((data.to_dict(), slices), tmp)
    return dst


class BioDataset(InMemoryDataset):
    """The converted graphs; items are EgoGraph (or the paper-parity EgoGraphUnoffset) so batching offsets centres."""

    def __init__(self, path: str | os.PathLike, offset_center: bool = True, transform=None):
        super().__init__(None, transform, log=False)
        data, slices = torch.load(path, weights_only=True, map_location="cpu")
        self.data = (EgoGraph if offset_center else EgoGraphUnoffset).from_dict(data)
        self.slices = slices


def load_converted(path: str | os.PathLike, offset_center: bool = True) -> BioDataset:
    """Open a file written by :func:`convert_legacy`."""
    return BioDataset(path, offset_center)


# ---------------------------------------------------------------------------------------- the writer


class LegacyData:
    """PyG 1.0.3's ``Data``: a plain object whose attributes live in ``__dict__`` (pickled by module and name)."""

    def __init__(self, **attrs: Tensor):
        self.__dict__.update(attrs)


LegacyData.__module__, LegacyData.__name__, LegacyData.__qualname__ = _PYG1_MODULE, "Data", "Data"


@contextmanager
def _pyg1_data_module() -> Iterator[None]:
    """Swap a module holding :class:`LegacyData` in as ``torch_geometric.data.data`` while pickling only.

    The real PyG (imported first when installed) is restored untouched afterwards.
    """
    try:
        importlib.import_module(_PYG1_MODULE)  # load the real one first so it is not imported against the stand-in
    except ImportError:
        pass
    fake = types.ModuleType(_PYG1_MODULE)
    fake.Data = LegacyData
    names = ["torch_geometric", "torch_geometric.data", _PYG1_MODULE]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names[:-1]:
        if saved[n] is None:
            sys.modules[n] = types.ModuleType(n)
    sys.modules[_PYG1_MODULE] = fake
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def save_legacy(attrs: dict[str, Tensor], slices: dict[str, Tensor], f: str | os.PathLike | BinaryIO) -> None:
    """Write ``(Data, slices)`` as PyG 1.0.3 did: a ``Data`` with its attributes in ``__dict__``, pickled with
    torch's pre-zipfile serialization (what torch 1.0 wrote). Streams to ``f``: the full set is ≈ 4.1 GB."""
    with _pyg1_data_module():
        torch.save((LegacyData(**attrs), slices), f, _use_new_zipfile_serialization=False)


def write_bio_zip(dest: str | os.PathLike, supervised: str | os.PathLike | None, *, unsupervised: str | os.PathLike | None = None,
                  extra: dict[str, bytes] | None = None) -> Path:
    """``bio_dataset.zip`` in the released layout, written atomically; ``supervised=None`` omits that file.

    The members are streamed from files (deflated), so a member of several GB never sits in memory;
    ``extra`` adds raw members by name (the tests' path-traversal cases).
    """
    from metapt.io import atomic_path

    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for d in ("dataset/", "dataset/supervised/", "dataset/supervised/processed/",
                  "dataset/unsupervised/", "dataset/unsupervised/processed/"):
            zf.writestr(d, b"")
        for member, src in ((LEGACY_MEMBER, supervised), (UNSUPERVISED_MEMBER, unsupervised)):
            if src is not None:
                zf.write(src, member)
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return Path(dest)
