"""The learned top-k sensor graph."""
import torch

from asv_autonomy.anomaly.graph import batch_edges, topk_edges


def test_topk_edges_join_the_most_similar_embeddings():
    # Two clusters of directions: {0, 1} near x, {2, 3} near y.
    embedding = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    edges = topk_edges(embedding, top_k=1, self_loops=False)
    pairs = set(map(tuple, edges.T.tolist()))   # (source, target)
    assert pairs == {(1, 0), (0, 1), (3, 2), (2, 3)}
    with_loops = topk_edges(embedding, top_k=1, self_loops=True)
    assert set(map(tuple, with_loops.T.tolist())) == pairs | {(i, i) for i in range(4)}


def test_topk_is_clamped_to_the_other_nodes():
    edges = topk_edges(torch.randn(3, 4), top_k=10, self_loops=False)
    assert edges.shape == (2, 6)
    assert (edges[0] != edges[1]).all()


def test_batch_edges_offsets_each_sample():
    edges = torch.tensor([[1, 0], [0, 1]])
    batched = batch_edges(edges, num_nodes=2, batch_size=3)
    assert batched.tolist() == [[1, 0, 3, 2, 5, 4], [0, 1, 2, 3, 4, 5]]
