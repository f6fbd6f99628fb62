"""The sensor-graph network: per-channel temporal encoder + attention message passing.

Each channel's window (normalised value and missing-data mask per step) goes through one
shared causal 1-D convolution stack; its summary plus the channel's learned embedding is
the node feature. One GDN-style attention layer (:class:`EmbeddingAttentionConv`) mixes
the features of each node's learned neighbours (:mod:`asv_autonomy.anomaly.graph`).
Heads: the next value of every channel (forecast), a graph-level projection for the
contrastive loss, and an optional fault-type classifier.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from .graph import batch_edges, topk_edges

__all__ = ['ModelConfig', 'EmbeddingAttentionConv', 'SensorGraphNet', 'ModelOutput']


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of :class:`SensorGraphNet`.

    Args:
        hidden: node feature width.
        embedding_dim: channel embedding width.
        top_k: learned neighbours per channel.
        kernel_size: temporal convolution kernel [steps] (three layers, dilations 1, 2, 4).
        projection_dim: width of the contrastive projection.
        self_loops: each node also attends to itself.
    """

    hidden: int = 32
    embedding_dim: int = 16
    top_k: int = 5
    kernel_size: int = 3
    projection_dim: int = 32
    self_loops: bool = True

    def __post_init__(self):
        for name in ('hidden', 'embedding_dim', 'kernel_size', 'projection_dim'):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f'{name} must be a positive int, got {getattr(self, name)!r}')
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f'top_k must be an int >= 0, got {self.top_k!r}')

    def to_dict(self) -> dict:
        return asdict(self)


class EmbeddingAttentionConv(MessagePassing):
    """GDN graph attention: ``z_i = sum_j alpha_ij W h_j`` over the edges j -> i, with
    ``alpha_ij = softmax_j(LeakyReLU(a_i . [W h_i, e_i] + a_j . [W h_j, e_j]))``, so the
    attention depends on both the current features and the channels' embeddings.

    Args:
        in_dim, out_dim: feature widths.
        embedding_dim: width of the channel embeddings.

    Shapes:
        x ``(n, in_dim)``, edge_index ``(2, E)``, embedding ``(n, embedding_dim)``
        -> ``(n, out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int, embedding_dim: int):
        super().__init__(aggr='add', node_dim=0)
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.att_target = nn.Parameter(torch.empty(out_dim + embedding_dim))
        self.att_source = nn.Parameter(torch.empty(out_dim + embedding_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        bound = (out_dim + embedding_dim) ** -0.5
        nn.init.uniform_(self.att_target, -bound, bound)
        nn.init.uniform_(self.att_source, -bound, bound)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                embedding: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        key = torch.cat([h, embedding], dim=1)
        # Per-node halves of the attention logit, gathered per edge in message().
        score_target = key @ self.att_target
        score_source = key @ self.att_source
        out = self.propagate(edge_index, h=h, score_target=score_target,
                             score_source=score_source)
        return out + self.bias

    def message(self, h_j, score_target_i, score_source_j, index, ptr, size_i):
        alpha = F.leaky_relu(score_target_i + score_source_j, 0.2)
        alpha = softmax(alpha, index, ptr, size_i)
        return h_j * alpha[:, None]


class ModelOutput(NamedTuple):
    """forecast ``(B, C)`` next normalised values; nodes ``(B, C, H)`` node features;
    projection ``(B, P)`` contrastive embedding; logits ``(B, K)`` fault classes or None."""

    forecast: torch.Tensor
    nodes: torch.Tensor
    projection: torch.Tensor
    logits: torch.Tensor | None


class _CausalConv(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, dilation: int):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, dilation=dilation)

    def forward(self, x):
        return self.conv(F.pad(x, (self.pad, 0)))


class SensorGraphNet(nn.Module):
    """Forecasting graph network over ``num_channels`` sensor channels.

    Args:
        num_channels: C, nodes of the graph.
        config: sizes.
        num_classes: K, fault classes of the classifier head (0: no head).

    Shapes:
        x, mask ``(B, C, L)`` (any L >= 1) -> :class:`ModelOutput`.
    """

    def __init__(self, num_channels: int, config: ModelConfig = ModelConfig(),
                 num_classes: int = 0):
        super().__init__()
        if num_channels < 1 or num_classes < 0:
            raise ValueError(f'need num_channels >= 1 and num_classes >= 0, got '
                             f'{num_channels}, {num_classes}')
        self.num_channels = num_channels
        self.config = config
        h, d, k = config.hidden, config.embedding_dim, config.kernel_size
        self.embedding = nn.Parameter(torch.randn(num_channels, d) * 0.5)
        self.temporal = nn.ModuleList([_CausalConv(2, h, k, 1), _CausalConv(h, h, k, 2),
                                       _CausalConv(h, h, k, 4)])
        self.summary = nn.Linear(2 * h, h)
        self.embed_in = nn.Linear(d, h)
        self.gnn = EmbeddingAttentionConv(h, h, d)
        self.gnn_norm = nn.LayerNorm(h)
        self.forecast_head = nn.Sequential(nn.Linear(h + d, h), nn.GELU(), nn.Linear(h, 1))
        self.projection_head = nn.Sequential(nn.Linear(h, h), nn.GELU(),
                                             nn.Linear(h, config.projection_dim))
        self.classifier = nn.Linear(2 * h, num_classes) if num_classes else None

    def edge_index(self) -> torch.Tensor:
        """The current learned graph (see :func:`graph.topk_edges`), ``(2, E)``."""
        return topk_edges(self.embedding, self.config.top_k, self.config.self_loops)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-channel temporal summaries ``(B, C, H)`` of windows ``(B, C, L)``."""
        b, c, length = x.shape
        seq = torch.stack([x, mask], dim=2).reshape(b * c, 2, length)
        for i, layer in enumerate(self.temporal):
            out = F.gelu(layer(seq))
            seq = out if i == 0 else seq + out
        observed = mask.reshape(b * c, 1, length)
        # Mean over observed steps only: a long outage must not drag the summary to 0.
        mean = (seq * observed).sum(-1) / observed.sum(-1).clamp(min=1.0)
        return self.summary(torch.cat([seq[:, :, -1], mean], dim=1)).reshape(b, c, -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        b, c, _ = x.shape
        if c != self.num_channels:
            raise ValueError(f'expected {self.num_channels} channels, got {c}')
        nodes = self.encode(x, mask) + self.embed_in(self.embedding)[None]
        flat = nodes.reshape(b * c, -1)
        embedding = self.embedding.repeat(b, 1)
        edges = batch_edges(self.edge_index(), c, b)
        mixed = F.gelu(self.gnn_norm(self.gnn(flat, edges, embedding))) + flat
        mixed = mixed.reshape(b, c, -1)
        forecast = self.forecast_head(
            torch.cat([mixed, self.embedding[None].expand(b, -1, -1)], dim=2)).squeeze(-1)
        projection = self.projection_head(mixed.mean(dim=1))
        logits = None
        if self.classifier is not None:
            logits = self.classifier(torch.cat([mixed.mean(dim=1), mixed.amax(dim=1)], dim=1))
        return ModelOutput(forecast, mixed, projection, logits)
