"""The sensor-graph network: shapes, attention, and that messages follow the graph."""
import pytest
import torch

from asv_autonomy.anomaly.model import EmbeddingAttentionConv, ModelConfig, SensorGraphNet


def test_output_shapes_with_and_without_classifier():
    torch.manual_seed(0)
    x, mask = torch.randn(4, 5, 12), torch.ones(4, 5, 12)
    out = SensorGraphNet(5, ModelConfig(hidden=8, embedding_dim=4, top_k=2))(x, mask)
    assert out.forecast.shape == (4, 5) and out.nodes.shape == (4, 5, 8)
    assert out.projection.shape == (4, 32) and out.logits is None
    out = SensorGraphNet(5, ModelConfig(hidden=8), num_classes=3)(x, mask)
    assert out.logits.shape == (4, 3)
    with pytest.raises(ValueError, match='expected 5 channels'):
        SensorGraphNet(5)(torch.zeros(1, 4, 12), torch.ones(1, 4, 12))


def test_attention_weights_sum_to_one():
    torch.manual_seed(0)
    conv = EmbeddingAttentionConv(3, 4, 2)
    # Every source has the same features: any convex combination of them is W h.
    x = torch.tensor([[1.0, -2.0, 0.5]]).repeat(3, 1)
    edges = torch.tensor([[0, 1, 2, 0, 2], [0, 0, 0, 1, 1]])
    out = conv(x, edges, torch.randn(3, 2))
    expected = conv.lin(x[:1]) + conv.bias
    assert torch.allclose(out[0], expected[0], atol=1e-6)
    assert torch.allclose(out[1], expected[0], atol=1e-6)
    assert torch.allclose(out[2], conv.bias)        # no incoming edge: nothing aggregated


def test_a_forecast_only_depends_on_its_neighbours():
    torch.manual_seed(0)
    model = SensorGraphNet(6, ModelConfig(hidden=8, embedding_dim=4, top_k=1)).eval()
    edges = model.edge_index()
    sources_of_0 = set(edges[0, edges[1] == 0].tolist())
    stranger = next(i for i in range(6) if i not in sources_of_0)
    x, mask = torch.randn(1, 6, 10), torch.ones(1, 6, 10)
    changed = x.clone()
    changed[0, stranger] += 5.0
    with torch.no_grad():
        before, after = model(x, mask).forecast, model(changed, mask).forecast
    assert before[0, 0] == pytest.approx(float(after[0, 0]), abs=1e-6)
    assert not torch.allclose(before[0, stranger], after[0, stranger])


def test_model_config_is_validated():
    with pytest.raises(ValueError, match='hidden'):
        ModelConfig(hidden=0)
    with pytest.raises(ValueError, match='top_k'):
        ModelConfig(top_k=-1)
