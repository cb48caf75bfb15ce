"""The ego-graph data object, with batching that offsets the centre-node index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch_geometric.data import Batch, Data


class EgoGraph(Data):
    """A PPI ego-network. ``center_node_idx`` is a node index, so batching must offset it.

    PyG's default collate leaves unknown keys un-offset (the authors' meta-PT loader has that
    quirk, so the centre half of the representation reads the wrong nodes); ``offset_center``
    keeps the quirk switchable for paper parity.
    """

    offset_center: bool = True

    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key == "center_node_idx":
            return self.num_nodes if self.offset_center else 0
        return super().__inc__(key, value, *args, **kwargs)


class EgoGraphUnoffset(EgoGraph):
    """Paper-parity variant reproducing the authors' un-offset centre index during PT."""

    offset_center = False


def collate_graphs(offset_center: bool = True):
    """PyG collate; ``offset_center=False`` undoes the centre-index offset (the authors' PT quirk)."""

    def collate(graphs: list) -> Batch:
        batch = Batch.from_data_list(graphs)
        if not offset_center:
            batch.center_node_idx = batch.center_node_idx - batch.ptr[:-1]
        return batch

    return collate


def subset(graphs: Sequence, idx: np.ndarray) -> list:
    return [graphs[int(i)] for i in idx]
