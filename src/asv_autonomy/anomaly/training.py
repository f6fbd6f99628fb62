"""Training of :class:`SensorGraphNet`: forecasting + contrastive + optional fault classes.

Loss per batch of normal windows::

    huber(forecast(view_a), target | target observed)
    + contrastive_weight * NT-Xent(projection(view_a), projection(view_b))
    + classifier_weight * CE(logits, class)           (when labelled windows are given)

``view_a`` is an augmented view without rescaling (crop, channel masking, jitter), so its
forecast still matches the unscaled target; hiding a channel's own history teaches the
network to forecast it from its neighbours. ``view_b`` adds scaling. With
``contrastive_weight = 0`` only ``view_a`` is computed (the "no contrastive" ablation).
Unlabelled training windows count as class 0 ('normal') for the classifier; labelled
windows are drawn class-balanced. Adam, early stopping on the clean forecast loss of the
validation windows, the best epoch's weights are kept.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .augment import AugmentConfig, augment
from .model import SensorGraphNet
from .windows import Windows

__all__ = ['TrainConfig', 'TrainResult', 'forecast_loss', 'nt_xent', 'fit']


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        epochs: maximum passes over the training windows.
        batch_size: windows per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        contrastive_weight: weight of the NT-Xent loss (0: forecasting only).
        temperature: NT-Xent temperature.
        classifier_weight: weight of the fault-class cross-entropy (used only with
            labelled windows).
        patience: epochs without a better validation loss before stopping.
        windows_per_epoch: at most this many (random) training windows per epoch
            (consecutive windows overlap almost fully; None: all).
        seed: seed of the shuffling and augmentations.
        augment: augmentation strengths.
    """

    epochs: int = 8
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-5
    contrastive_weight: float = 0.1
    temperature: float = 0.2
    classifier_weight: float = 1.0
    patience: int = 3
    windows_per_epoch: int | None = 20000
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError('need epochs >= 1, batch_size >= 2 and patience >= 1')
        if not (self.lr > 0.0 and self.weight_decay >= 0.0):
            raise ValueError(f'need lr > 0 and weight_decay >= 0, got {self.lr}, '
                             f'{self.weight_decay}')
        if not (self.contrastive_weight >= 0.0 and self.classifier_weight >= 0.0):
            raise ValueError('loss weights must be >= 0')
        if not self.temperature > 0.0:
            raise ValueError(f'temperature must be > 0, got {self.temperature}')
        if self.windows_per_epoch is not None and self.windows_per_epoch < self.batch_size:
            raise ValueError('windows_per_epoch must be >= batch_size (or None)')
        if isinstance(self.augment, dict):
            object.__setattr__(self, 'augment', AugmentConfig(**self.augment))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """losses / validation_losses: per epoch (mean training loss, clean validation
    forecast loss); best_epoch: 1-based epoch whose weights were kept; train_s [s]."""

    losses: list[float]
    validation_losses: list[float]
    best_epoch: int
    train_s: float


def forecast_loss(forecast: torch.Tensor, target: torch.Tensor,
                  target_mask: torch.Tensor) -> torch.Tensor:
    """Huber loss over the observed targets (0 when none is observed).

    Shapes:
        all ``(B, C)`` -> scalar.
    """
    per_value = F.smooth_l1_loss(forecast, target, reduction='none', beta=1.0)
    return (per_value * target_mask).sum() / target_mask.sum().clamp(min=1.0)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR): each view's positive is the other view of the same window, the
    other 2B - 2 views of the batch are negatives.

    Shapes:
        a, b ``(B, P)`` -> scalar.
    """
    z = F.normalize(torch.cat([a, b]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(-float('inf'))
    n = a.shape[0]
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, positives)


def validation_loss(model: SensorGraphNet, windows: Windows, batch_size: int = 1024) -> float:
    """Mean clean forecast loss of ``windows`` (weighted by observed targets)."""
    total, count = 0.0, 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            part = windows.subset(torch.arange(start, min(start + batch_size, len(windows))))
            out = model(part.x, part.mask)
            observed = float(part.target_mask.sum())
            total += float(forecast_loss(out.forecast, part.target, part.target_mask)) * observed
            count += observed
    return total / max(count, 1.0)


def fit(model: SensorGraphNet, train: Windows, validation: Windows | None,
        config: TrainConfig = TrainConfig(), labelled: Windows | None = None,
        labelled_classes: torch.Tensor | None = None,
        progress: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Train ``model`` in place (the best validation epoch's weights are kept).

    Args:
        model: the network (with a classifier head when ``labelled`` is given).
        train: windows of normal operation.
        validation: held-out normal windows for early stopping (None: the last 10 % of
            ``train`` by index; too few windows: no early stopping).
        config: settings.
        labelled: windows with known classes (semi-supervision), or None.
        labelled_classes: class index per labelled window (0 = normal), ``(B_l,)``.
        progress: called as ``progress(epoch, epochs, loss)`` after each epoch.

    Returns:
        the loss history.
    """
    if len(train) < 2:
        raise ValueError(f'need at least 2 training windows, got {len(train)}')
    use_classes = labelled is not None and len(labelled) > 0 and model.classifier is not None
    if labelled is not None and len(labelled) and model.classifier is None:
        raise ValueError('labelled windows given but the model has no classifier head')
    generator = torch.Generator().manual_seed(config.seed)
    if validation is None and len(train) >= 20:
        cut = int(len(train) * 0.9)
        validation, train = train.subset(torch.arange(cut, len(train))), \
            train.subset(torch.arange(cut))
    if use_classes:
        counts = torch.bincount(labelled_classes, minlength=model.classifier.out_features).float()
        sample_weight = 1.0 / counts[labelled_classes]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    per_epoch = len(train) if config.windows_per_epoch is None else \
        min(len(train), config.windows_per_epoch)
    steps = max(1, per_epoch // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr,
                                                    total_steps=steps * config.epochs)
    losses, val_losses = [], []
    best, best_state, best_epoch, stale = math.inf, None, 0, 0
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)[:steps * config.batch_size]
        running = 0.0
        for step in range(steps):
            batch = train.subset(order[step * config.batch_size:(step + 1) * config.batch_size])
            xa, ma = augment(batch.x, batch.mask, config.augment, generator, with_scale=False)
            out_a = model(xa, ma)
            loss = forecast_loss(out_a.forecast, batch.target, batch.target_mask)
            if config.contrastive_weight > 0.0:
                xb, mb = augment(batch.x, batch.mask, config.augment, generator)
                loss = loss + config.contrastive_weight * nt_xent(
                    out_a.projection, model(xb, mb).projection, config.temperature)
            if use_classes:
                pick = torch.multinomial(sample_weight, min(len(labelled), config.batch_size // 4),
                                         replacement=True, generator=generator)
                part = labelled.subset(pick)
                logits = torch.cat([out_a.logits, model(part.x, part.mask).logits])
                classes = torch.cat([torch.zeros(len(batch), dtype=torch.long),
                                     labelled_classes[pick]])
                loss = loss + config.classifier_weight * F.cross_entropy(logits, classes)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            scheduler.step()
            running += float(loss.detach())
        losses.append(running / steps)
        val = validation_loss(model, validation) if validation is not None and len(validation) \
            else losses[-1]
        val_losses.append(val)
        if progress is not None:
            progress(epoch, config.epochs, losses[-1])
        if val < best:
            best, best_epoch, stale = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:      # None only when every validation loss was NaN
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(losses, val_losses, best_epoch, time.perf_counter() - started)
