"""Augmentations, losses and the training loop."""
import math

import pytest
import torch

from asv_autonomy.anomaly.augment import AugmentConfig, augment, crop, mask_channels
from asv_autonomy.anomaly.model import ModelConfig, SensorGraphNet
from asv_autonomy.anomaly.training import (TrainConfig, fit, forecast_loss, nt_xent,
                                           validation_loss)
from asv_autonomy.anomaly.windows import make_windows


def test_masking_and_cropping_keep_masked_inputs_zero_and_the_last_step():
    generator = torch.Generator().manual_seed(0)
    x, mask = torch.randn(64, 4, 10), torch.ones(64, 4, 10)
    mx, mm = mask_channels(x, mask, 0.5, generator)
    hidden = mm[:, :, 0] == 0
    assert 0 < hidden.float().mean() < 1
    assert (mx[hidden] == 0).all() and (mm[hidden] == 0).all()
    cx, cm = crop(x, mask, 5, generator)
    assert (cm[:, :, -1] == 1).all() and (cx[:, :, -1] == x[:, :, -1]).all()
    assert (cm[:, :, 5:] == 1).all() and (cm[:, :, :5] == 0).any()
    ax, am = augment(x, mask, AugmentConfig(), generator)
    assert ((ax == 0) | (am == 1)).all()


def test_forecast_loss_ignores_missing_targets():
    forecast = torch.tensor([[1.0, 100.0]])
    target = torch.tensor([[1.5, 0.0]])
    loss = forecast_loss(forecast, target, torch.tensor([[1.0, 0.0]]))
    assert float(loss) == pytest.approx(0.5 * 0.5 ** 2)     # Huber, |e| < 1
    assert float(forecast_loss(forecast, target, torch.zeros(1, 2))) == 0.0


def test_nt_xent_prefers_matching_views():
    a = torch.eye(4)
    assert float(nt_xent(a, a, 0.1)) < 0.01
    assert float(nt_xent(a, a.roll(1, 0), 0.1)) > 5.0
    # Uniform similarities: log(2B - 1) = log 7.
    assert float(nt_xent(torch.ones(4, 2), torch.ones(4, 2), 0.5)) == pytest.approx(math.log(7))


def _coupled_windows(n, seed):
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float32) * 0.1
    a = torch.sin(t * 0.9) + 0.05 * torch.randn(n, generator=generator)
    b = torch.roll(a, 3)
    values = torch.stack([a, b], 1)
    return make_windows(values, torch.ones_like(values), length=10)


def test_fit_learns_a_predictable_pair_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = SensorGraphNet(2, ModelConfig(hidden=8, embedding_dim=4, top_k=1))
    train, validation = _coupled_windows(1200, 0), _coupled_windows(400, 1)
    untrained = validation_loss(model, validation)
    progress = []
    result = fit(model, train, validation,
                 TrainConfig(epochs=4, batch_size=64, windows_per_epoch=1024, lr=1e-2),
                 progress=lambda e, n, loss: progress.append((e, n)))
    assert progress == [(e, 4) for e in range(1, len(result.losses) + 1)]
    assert result.validation_losses[result.best_epoch - 1] == min(result.validation_losses)
    assert validation_loss(model, validation) == pytest.approx(min(result.validation_losses))
    assert min(result.validation_losses) < 0.2 * untrained


def test_train_config_is_validated():
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError):
        TrainConfig(temperature=0.0)
    with pytest.raises(ValueError):
        TrainConfig(batch_size=64, windows_per_epoch=10)
