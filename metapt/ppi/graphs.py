"""The ego-graph data object, with batching that offsets the centre-node index."""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data


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
