"""The learned sensor graph: channels are nodes, edges join channels with similar embeddings.

As in GDN (Deng & Hooi, AAAI 2021), every channel ``i`` has a learned embedding ``e_i``;
node ``i`` receives messages from the ``top_k`` channels whose embeddings are most
cosine-similar to its own. The top-k choice is not differentiable; the embeddings are
trained through the attention and forecast heads that also use them, and the edges follow.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['topk_edges', 'batch_edges']


def topk_edges(embedding: torch.Tensor, top_k: int, self_loops: bool = True) -> torch.Tensor:
    """Edges from each node's ``top_k`` most similar other nodes to the node.

    Args:
        embedding: channel embeddings.
        top_k: neighbours per node (clamped to ``C - 1``).
        self_loops: also add the edge i -> i (the node keeps its own features in the
            attention-weighted sum).

    Returns:
        ``edge_index`` in torch_geometric format: row 0 sources (neighbours), row 1
        targets, targets in increasing order.

    Shapes:
        embedding ``(C, D)`` -> edge_index ``(2, C * k')``, ``k' = min(top_k, C - 1)
        (+ 1 with self loops)``.
    """
    if top_k < 0:
        raise ValueError(f'top_k must be >= 0, got {top_k}')
    c = embedding.shape[0]
    k = min(top_k, c - 1)
    with torch.no_grad():
        unit = F.normalize(embedding.detach(), dim=1)
        similarity = unit @ unit.T
        similarity.fill_diagonal_(-float('inf'))
        neighbours = similarity.topk(k, dim=1).indices if k > 0 else \
            torch.zeros((c, 0), dtype=torch.long, device=embedding.device)
    if self_loops:
        neighbours = torch.cat([neighbours, torch.arange(c, device=embedding.device)[:, None]],
                               dim=1)
    targets = torch.arange(c, device=embedding.device)[:, None].expand_as(neighbours)
    return torch.stack([neighbours.reshape(-1), targets.reshape(-1)])


def batch_edges(edge_index: torch.Tensor, num_nodes: int, batch_size: int) -> torch.Tensor:
    """The same graph repeated ``batch_size`` times as one disconnected graph (node ids of
    sample ``b`` offset by ``b * num_nodes``), as torch_geometric batches graphs.

    Shapes:
        edge_index ``(2, E)`` -> ``(2, batch_size * E)``.
    """
    offsets = torch.arange(batch_size, device=edge_index.device) * num_nodes
    return (edge_index[:, None, :] + offsets[None, :, None]).reshape(2, -1)
