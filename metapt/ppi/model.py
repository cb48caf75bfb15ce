"""The Hu et al. (2020) GIN for bio ego-networks, on PyG message passing.

Each layer adds self-loops (edge-attribute channel 7 set to 1), embeds the 9-d edge
attributes into the hidden size, sends [neighbour ‖ edge embedding] as the message, sums,
and applies MLP(2h → 2h → BN → ReLU → h) then BN. ReLU between layers, JK = last.
The graph representation is [mean pool ‖ centre-node embedding] (2h).
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing, global_mean_pool

N_EDGE_FEATURES = 9
SELF_LOOP_CHANNEL = 7


class GINEdgeConcat(MessagePassing):
    def __init__(self, hidden: int):
        super().__init__(aggr="add")
        self.edge_embedding = nn.Linear(N_EDGE_FEATURES, hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        loops = torch.arange(n, device=x.device)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        loop_attr = torch.zeros(n, edge_attr.size(1), dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr[:, SELF_LOOP_CHANNEL] = 1
        edge_emb = self.edge_embedding(torch.cat([edge_attr, loop_attr], dim=0))
        return self.mlp(self.propagate(edge_index, x=x, edge_emb=edge_emb))

    def message(self, x_j: torch.Tensor, edge_emb: torch.Tensor) -> torch.Tensor:
        return torch.cat([x_j, edge_emb], dim=1)


class GIN(nn.Module):
    """Encoder: a batch of ego-graphs → [mean pool ‖ centre node] of size 2·hidden."""

    def __init__(self, layers: int = 5, hidden: int = 300, dropout: float = 0.2):
        super().__init__()
        self.node_embedding = nn.Embedding(2, hidden)  # the constant node input (x = 1)
        self.convs = nn.ModuleList(GINEdgeConcat(hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, batch) -> torch.Tensor:
        h = self.node_embedding(batch.x[:, 0].long())
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h, batch.edge_index, batch.edge_attr))
            if i < last:
                h = torch.relu(h)
            h = self.dropout(h)
        return torch.cat([global_mean_pool(h, batch.batch), h[batch.center_node_idx]], dim=1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def gin(m) -> GIN:
    """A GIN of a ``GINConfig``, freshly initialised (under the caller's seed): the one place it is built."""
    return GIN(m.layers, m.hidden, m.dropout)


def encoder(profile) -> GIN:
    return gin(profile.ppi.model)
