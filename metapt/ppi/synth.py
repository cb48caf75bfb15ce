"""Synthetic PPI-like ego-graphs with planted PT→FT task relevance, in the real bio data's exact format.

Why: the embedded default must run without the 2 GB download, and it must know the answer the
real data never gives: which PT tasks help the FT tasks. Each centre protein has K latent binary
factors; a present factor is drawn as a small clique on the centre whose edges carry that factor's
pair of evidence channels, with species-dependent prevalence (so the species split shifts the
distribution). FT tasks are ANDs of "relevant" factors; PT tasks copy them (helpful), use only the
other factors (distractor) or are Bernoulli noise. ``ground_truth.json`` records every task's kind
and a helpfulness score so learned task weights can be scored against the truth.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch_geometric.data import InMemoryDataset
from torch_geometric.data.separate import separate

from metapt.io import atomic_path
from metapt.ppi.graphs import EgoGraph
from metapt.ppi.splits import TEST_SPECIES, TRAIN_VAL_SPECIES

SPECIES: tuple[int, ...] = (3702, 6239, 511145, 7227, 9606, 10090, 4932, 7955)  # order sets the base-rate shift
assert set(SPECIES) == set(TRAIN_VAL_SPECIES) | set(TEST_SPECIES)
N_CHANNELS = 7  # STRING evidence channels; the data adds two zero channels (self-loop, mask)
N_EDGE_FEATURES = N_CHANNELS + 2
CHANNEL_PAIRS = tuple(itertools.combinations(range(N_CHANNELS), 2))  # 21 possible motif signatures
DATA_FILE = "geometric_data_processed.pt"
TRUTH_FILE = "ground_truth.json"
LABEL_CHUNK = 4096  # graphs per chunk of label draws: bounds memory at paper scale (88k × 5000)

Range = tuple[float, float]
Arity = tuple[int, int]


class SynthPPIConfig(BaseModel):
    """Every knob of the generator. Defaults are the ``discriminating`` preset (Trial 2, "G9")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_graphs: int = Field(3000, ge=1)
    n_pt_tasks: int = Field(200, ge=1, description="T_pt: tiny in tests, a few hundred by default, 5000 at paper scale")
    n_ft_tasks: int = Field(40, ge=1)
    # latent factors and their motifs
    n_factors: int = Field(20, ge=2, description="K latent factors per centre protein")
    n_relevant: int = Field(4, ge=1, description="factors 0..n_relevant-1 make up the FT tasks")
    unique_motifs: bool = Field(True, description="each factor gets its own channel pair (needs n_factors ≤ 21)")
    motif_size: int = Field(3, ge=1, description="first-hop nodes in a factor's clique with the centre")
    motif_p: float = Field(0.9, gt=0, le=1, description="P(a motif edge carries each channel of its factor's pair)")
    prevalence_relevant: Range = Field((0.25, 0.5), description="per-species P(factor) ~ U(lo, hi), relevant factors")
    prevalence_irrelevant: Range = Field((0.2, 0.5), description="… for the distractor factors")
    # background ego-network (the prototype's preferential-attachment-ish ego net)
    base_rate: float = Field(0.2, ge=0, lt=1, description="P(channel) on a background edge")
    base_rate_species_shift: float = Field(0.05, ge=0, description="base rate grows by this over the SPECIES order")
    nodes_log_mean: float = Field(3.3, description="log node count ~ N(mean, sigma), clipped: ≈27 nodes median")
    nodes_log_sigma: float = Field(0.5, ge=0)
    min_nodes: int = Field(8, ge=2)
    max_nodes: int = Field(120, ge=2)
    first_hop_frac: float = Field(0.4, gt=0, lt=1, description="share of nodes adjacent to the centre")
    min_first_hop: int = Field(3, ge=1)
    extra_edges_per_node: float = Field(0.5, ge=0, description="random non-centre edges, per node")
    shuffle_nodes: bool = Field(True, description="random node order, so the centre is not always node 0")
    # FT tasks
    ft_arity: Arity = Field((1, 2), description="an FT task is the AND of this many relevant factors")
    ft_flip: float = Field(0.02, ge=0, lt=0.5)
    # PT tasks
    frac_helpful: float = Field(0.2, ge=0, le=1)
    frac_noise: float = Field(0.1, ge=0, le=1)
    helpful_mode: Literal["copy", "noisycopy", "graded"] = Field(
        "noisycopy", description="copy: AND of copy_arity relevant factors; noisycopy: one FT task's full support; "
        "graded: a random non-empty subset of one FT task's support")
    copy_arity: Arity = Field((1, 2), description="support size of helpful tasks in copy mode")
    helpful_noise: Range = Field((0.0, 0.1), description="a helpful task's label-flip rate ~ U(lo, hi)")
    p_or: float = Field(0.3, ge=0, le=1, description="P(a helpful task is OR'd with one distractor factor)")
    distractor_arity: Arity = Field((1, 2), description="a distractor task is the AND of this many irrelevant factors")
    distractor_flip: float = Field(0.02, ge=0, lt=0.5)
    noise_rate: float = Field(0.03, ge=0, le=1, description="noise tasks: labels ~ Bernoulli(noise_rate)")

    @model_validator(mode="after")
    def _consistent(self) -> "SynthPPIConfig":
        for name in ("prevalence_relevant", "prevalence_irrelevant", "helpful_noise"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"{name} must satisfy 0 ≤ lo ≤ hi ≤ 1, got {(lo, hi)}")
        n_irr = self.n_factors - self.n_relevant
        for name, pool in (("ft_arity", self.n_relevant), ("copy_arity", self.n_relevant), ("distractor_arity", n_irr)):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi <= pool:
                raise ValueError(f"{name} must satisfy 1 ≤ lo ≤ hi ≤ {pool} (its factor pool), got {(lo, hi)}")
        if self.unique_motifs and self.n_factors > len(CHANNEL_PAIRS):
            raise ValueError(f"unique_motifs needs n_factors ≤ {len(CHANNEL_PAIRS)}, got {self.n_factors}")
        if self.frac_helpful + self.frac_noise > 1:
            raise ValueError("frac_helpful + frac_noise must be ≤ 1")
        if not self.min_first_hop < self.min_nodes <= self.max_nodes:
            raise ValueError("need min_first_hop < min_nodes ≤ max_nodes")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    # Trial 2, "G9", the embedded default: FT-relevant signal is contested, uniform PT ≪ oracle.
    "discriminating": {},
    # Trial 1, the first prototype as it was: helpful tasks are near-copies of FT tasks; good for weight recovery.
    "weight_recovery": dict(
        n_factors=16, unique_motifs=False, motif_size=4, motif_p=1.0, base_rate=0.15,
        prevalence_relevant=(0.05, 0.25), prevalence_irrelevant=(0.05, 0.25),
        helpful_mode="copy", helpful_noise=(0.02, 0.02), p_or=0.0),
    # Prototype G7 (G8 with helpful_mode="noisycopy"): FT = AND of 2–3, where the one-step signal fails (ablation).
    "conjunction": dict(ft_arity=(2, 3), helpful_mode="graded", helpful_noise=(0.1, 0.3)),
}


def preset(name: str, **overrides: Any) -> SynthPPIConfig:
    """A named preset with optional overrides (e.g. sizes): ``preset("discriminating", n_graphs=600)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic PPI preset {name!r}; choose from {sorted(PRESETS)}")
    return SynthPPIConfig(**{**PRESETS[name], **overrides})


# ---------------------------------------------------------------- the planted world and its tasks


def _subset(rng: np.random.Generator, pool: np.ndarray, arity: Arity) -> list[int]:
    return sorted(rng.choice(pool, size=int(rng.integers(arity[0], arity[1] + 1)), replace=False).tolist())


def _draw_world(cfg: SynthPPIConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Motif channel pairs, per-species prevalence and FT supports: everything PT-task-independent."""
    if cfg.unique_motifs:
        motif = [CHANNEL_PAIRS[i] for i in rng.choice(len(CHANNEL_PAIRS), cfg.n_factors, replace=False)]
    else:
        motif = [tuple(sorted(rng.choice(N_CHANNELS, 2, replace=False).tolist())) for _ in range(cfg.n_factors)]
    n_irr = cfg.n_factors - cfg.n_relevant
    prev = np.concatenate([rng.uniform(*cfg.prevalence_relevant, size=(len(SPECIES), cfg.n_relevant)),
                           rng.uniform(*cfg.prevalence_irrelevant, size=(len(SPECIES), n_irr))], axis=1)
    rel = np.arange(cfg.n_relevant)
    ft = [_subset(rng, rel, cfg.ft_arity) for _ in range(cfg.n_ft_tasks)]
    return dict(motif=np.array(motif, dtype=np.int64), prev=prev, ft_support=ft)


def _draw_pt_bank(cfg: SynthPPIConfig, rng: np.random.Generator, ft_support: list[list[int]]) -> dict[str, list]:
    """PT tasks with exact kind counts (so tiny banks still hold every kind), in random order."""
    T = cfg.n_pt_tasks
    n_h, n_n = round(cfg.frac_helpful * T), round(cfg.frac_noise * T)
    kinds = rng.permutation(np.array(["helpful"] * n_h + ["noise"] * n_n + ["distractor"] * (T - n_h - n_n))).tolist()
    rel, irr = np.arange(cfg.n_relevant), np.arange(cfg.n_relevant, cfg.n_factors)
    bank: dict[str, list] = {k: [] for k in ("kind", "support", "or", "noise", "source_ft")}
    for kind in kinds:
        sup, orf, src = [], [], -1
        if kind == "helpful":
            if cfg.helpful_mode == "copy":
                sup = _subset(rng, rel, cfg.copy_arity)
            else:
                src = int(rng.integers(len(ft_support)))
                f = np.array(ft_support[src])
                sup = f.tolist() if cfg.helpful_mode == "noisycopy" else _subset(rng, f, (1, len(f)))
            if rng.random() < cfg.p_or:
                orf = [int(rng.choice(irr))]
            nz = float(rng.uniform(*cfg.helpful_noise))
        elif kind == "noise":
            nz = cfg.noise_rate
        else:
            sup, nz = _subset(rng, irr, cfg.distractor_arity), cfg.distractor_flip
        for key, val in zip(("kind", "support", "or", "noise", "source_ft"), (kind, sup, orf, nz, src)):
            bank[key].append(val)
    return bank


def helpfulness(support: list[int], or_factors: list[int], noise: float, ft_support: list[list[int]]) -> float:
    """(1 − 2·noise) × mean over FT tasks of |S ∩ F| / |S ∪ F ∪ OR|: 1 for a clean copy of every FT task, 0 without overlap.

    Averaging over FT tasks mirrors the FT objective (a mean over tasks); the OR'd factors count in the
    union because they corrupt the label; label noise shrinks the signal by 1 − 2·noise.
    """
    s, o = set(support), set(or_factors)
    if not s:
        return 0.0
    overlap = [len(s & set(f)) / len(s | set(f) | o) for f in ft_support]
    return float((1.0 - 2.0 * noise) * np.mean(overlap))


# ---------------------------------------------------------------- graphs and labels


def _ego_graph(cfg: SynthPPIConfig, rng: np.random.Generator, active: np.ndarray, base: float, motif: np.ndarray):
    """One ego-net: (n nodes, centre index, undirected edges [E, 2] with lo < hi, sorted; channels [E, 7] bool)."""
    n = int(np.clip(rng.lognormal(cfg.nodes_log_mean, cfg.nodes_log_sigma), cfg.min_nodes, cfg.max_nodes))
    n1 = min(max(cfg.min_first_hop, int(cfg.first_hop_frac * n)), n - 1)
    hop2 = np.arange(n1 + 1, n)
    extra = rng.integers(1, n, size=(int(cfg.extra_edges_per_node * n), 2))
    bg = np.concatenate([
        np.stack([np.zeros(n1, np.int64), np.arange(1, n1 + 1)], 1),  # centre — first hop
        np.stack([rng.integers(1, n1 + 1, size=len(hop2)), hop2], 1),  # first hop — second hop
        np.sort(extra[extra[:, 0] != extra[:, 1]], axis=1),  # random extra edges
    ])
    m = min(cfg.motif_size, n1)  # each active factor: a clique on the centre and m distinct first-hop nodes
    members = np.concatenate([np.zeros((len(active), 1), np.int64),
                              np.argsort(rng.random((len(active), n1)), axis=1)[:, :m] + 1], axis=1)
    iu, ju = np.triu_indices(m + 1, k=1)
    motif_edges = np.sort(np.stack([members[:, iu], members[:, ju]], -1).reshape(-1, 2), axis=1)

    keys, inv = np.unique(np.concatenate([bg, motif_edges]) @ np.array([n, 1]), return_inverse=True)
    in_bg = np.zeros(len(keys), bool)
    in_bg[inv[: len(bg)]] = True
    attr = (rng.random((len(keys), N_CHANNELS)) < base) & in_bg[:, None]  # motif-only edges carry just their pair
    if len(active):
        rows = np.repeat(inv[len(bg):], 2)
        chans = np.broadcast_to(motif[active][:, None, :], (len(active), len(iu), 2)).reshape(-1)
        hit = rng.random(len(rows)) < cfg.motif_p
        attr[rows[hit], chans[hit]] = True
    empty = np.flatnonzero(~attr.any(1))  # every STRING edge has some evidence
    attr[empty, rng.integers(N_CHANNELS, size=len(empty))] = True

    perm = rng.permutation(n) if cfg.shuffle_nodes else np.arange(n)
    edges = np.sort(perm[np.stack([keys // n, keys % n], 1)], axis=1)
    order = np.argsort(edges[:, 0] * n + edges[:, 1])
    return n, int(perm[0]), edges[order], attr[order]


def _to_graph(n: int, center: int, edges: np.ndarray, attr: np.ndarray, species: int, y_pt, y_ft) -> EgoGraph:
    """Real-data layout: each undirected edge as two consecutive directed entries, 9 float channels."""
    ei = np.empty((2, 2 * len(edges)), np.int64)
    ei[:, 0::2], ei[:, 1::2] = edges.T, edges.T[::-1]
    ea = np.zeros((2 * len(edges), N_EDGE_FEATURES), np.float32)
    ea[:, :N_CHANNELS] = np.repeat(attr, 2, axis=0)
    return EgoGraph(
        x=torch.ones(n, 1), edge_index=torch.from_numpy(ei), edge_attr=torch.from_numpy(ea),
        species_id=torch.tensor([species]), center_node_idx=torch.tensor([center]),
        go_target_pretrain=torch.from_numpy(y_pt[None].copy()), go_target_downstream=torch.from_numpy(y_ft[None].copy()),
    )


def _support_masks(supports: list[list[int]], k: int) -> np.ndarray:
    mask = np.zeros((len(supports), k), np.int32)
    for t, s in enumerate(supports):
        mask[t, s] = 1
    return mask


def _labels(z: np.ndarray, and_sup: list[list[int]], or_sup: list[list[int]], noise: np.ndarray, null: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """y = (AND of support ∨ ANY of OR factors), 0 for null (noise) tasks, then flipped w.p. noise; uint8 [N, T]."""
    a, o = _support_masks(and_sup, z.shape[1]), _support_masks(or_sup, z.shape[1])
    need = a.sum(1)
    out = np.empty((len(z), len(and_sup)), np.uint8)
    for lo in range(0, len(z), LABEL_CHUNK):  # same stream as one big draw: rows are filled in order
        zi = z[lo: lo + LABEL_CHUNK].astype(np.int32)
        y = ((zi @ a.T == need) | (zi @ o.T > 0)) & ~null
        out[lo: lo + LABEL_CHUNK] = y ^ (rng.random(y.shape) < noise)
    return out


def generate(cfg: SynthPPIConfig, seed: int) -> tuple[list[EgoGraph], dict[str, Any]]:
    """Graphs and ground truth. Independent RNG streams keep graphs and FT labels fixed when only T_pt changes."""
    world_rng, bank_rng, latent_rng, graph_rng, ft_rng, pt_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6))
    world = _draw_world(cfg, world_rng)
    bank = _draw_pt_bank(cfg, bank_rng, world["ft_support"])

    species_idx = latent_rng.integers(len(SPECIES), size=cfg.n_graphs)
    z = latent_rng.random((cfg.n_graphs, cfg.n_factors)) < world["prev"][species_idx]
    y_ft = _labels(z, world["ft_support"], [[]] * cfg.n_ft_tasks, np.full(cfg.n_ft_tasks, cfg.ft_flip),
                   np.zeros(cfg.n_ft_tasks, bool), ft_rng)
    y_pt = _labels(z, bank["support"], bank["or"], np.array(bank["noise"]), np.array(bank["kind"]) == "noise", pt_rng)

    base = cfg.base_rate + cfg.base_rate_species_shift * np.arange(len(SPECIES)) / len(SPECIES)
    graphs = []
    for i in range(cfg.n_graphs):
        s = species_idx[i]
        g = _ego_graph(cfg, graph_rng, np.flatnonzero(z[i]), base[s], world["motif"])
        graphs.append(_to_graph(*g, SPECIES[s], y_pt[i], y_ft[i]))

    truth = dict(
        format="metapt.synth_ppi/1", seed=seed, config=cfg.model_dump(mode="json"),
        species=list(SPECIES), test_species=list(TEST_SPECIES),
        relevant_factors=list(range(cfg.n_relevant)), motif_channels=world["motif"].tolist(),
        prevalence={str(sp): world["prev"][j].tolist() for j, sp in enumerate(SPECIES)},
        ft_support=world["ft_support"],
        pt_kind=bank["kind"], pt_support=bank["support"], pt_or=bank["or"], pt_noise=bank["noise"],
        pt_source_ft=bank["source_ft"],
        helpfulness=[helpfulness(s, o, nz, world["ft_support"]) for s, o, nz in zip(bank["support"], bank["or"], bank["noise"])],
        helpful_mask=[k == "helpful" for k in bank["kind"]],
    )
    return graphs, truth


# ---------------------------------------------------------------- on disk (the real converter's PyG-2 format)


def write_dataset(graphs: list[EgoGraph], ground_truth: dict[str, Any], out_dir: str | os.PathLike) -> None:
    """Write ``(data.to_dict(), slices)`` as InMemoryDataset collates it, plus ground_truth.json; both atomic."""
    if not graphs:
        raise ValueError("write_dataset needs at least one graph")
    out = Path(out_dir)
    data, slices = InMemoryDataset.collate(graphs)
    with atomic_path(out / DATA_FILE) as tmp:
        torch.save((data.to_dict(), slices), tmp)
    with atomic_path(out / TRUTH_FILE) as tmp:
        tmp.write_text(json.dumps(ground_truth))


def load_dataset(out_dir: str | os.PathLike, cls: type[EgoGraph] = EgoGraph) -> list[EgoGraph]:
    """Read the graphs back (weights_only); ``cls=EgoGraphUnoffset`` gives the paper-parity batching quirk."""
    data_dict, slices = torch.load(Path(out_dir) / DATA_FILE, weights_only=True)[:2]
    data = cls.from_dict(data_dict)
    if slices is None:  # InMemoryDataset.collate returns no slices for a single graph
        return [data]
    n = len(slices["x"]) - 1
    return [separate(cls=cls, batch=data, idx=i, slice_dict=slices, decrement=False) for i in range(n)]


def load_ground_truth(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The planted truth that learned task weights are scored against (kinds, helpfulness, supports)."""
    return json.loads((Path(out_dir) / TRUTH_FILE).read_text())
