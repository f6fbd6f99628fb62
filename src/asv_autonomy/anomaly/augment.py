"""Augmentations of normalised windows for the contrastive loss.

All take and return ``(x, mask)`` of shape ``(B, C, L)`` (normalised values, 0 where
missing; mask 1 where observed) and keep the invariant: masked inputs are 0. The last
step of a window stays aligned with the forecasting target (cropping removes OLD steps),
so an augmented view can also be used for the forecast loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ['AugmentConfig', 'jitter', 'scale', 'mask_channels', 'crop', 'augment']


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the augmentations (normalised units / probabilities).

    Args:
        jitter_std: std of the Gaussian noise added to observed values.
        scale_std: std of the per-channel multiplicative factor around 1.
        mask_probability: probability that a channel's whole window is hidden.
        max_crop: at most this many of the oldest steps are hidden [steps].
    """

    jitter_std: float = 0.05
    scale_std: float = 0.1
    mask_probability: float = 0.15
    max_crop: int = 10

    def __post_init__(self):
        if min(self.jitter_std, self.scale_std) < 0.0 or self.max_crop < 0:
            raise ValueError('jitter_std, scale_std and max_crop must be >= 0')
        if not 0.0 <= self.mask_probability < 1.0:
            raise ValueError(f'mask_probability must be in [0, 1), got {self.mask_probability}')


def jitter(x, mask, std: float, generator=None):
    """Add N(0, std^2) noise to the observed values."""
    noise = torch.randn(x.shape, generator=generator) * std
    return x + noise * mask, mask


def scale(x, mask, std: float, generator=None):
    """Multiply each (window, channel) by a factor N(1, std^2)."""
    factor = 1.0 + torch.randn(x.shape[:2], generator=generator)[..., None] * std
    return x * factor, mask


def mask_channels(x, mask, probability: float, generator=None):
    """Hide each (window, channel) with ``probability`` (value 0, mask 0)."""
    keep = (torch.rand(x.shape[:2], generator=generator) >= probability).float()[..., None]
    return x * keep, mask * keep


def crop(x, mask, max_steps: int, generator=None):
    """Hide the oldest r steps of each window, r uniform in [0, max_steps] (< L)."""
    length = x.shape[2]
    max_steps = min(max_steps, length - 1)
    if max_steps <= 0:
        return x, mask
    cut = torch.randint(0, max_steps + 1, (x.shape[0], 1, 1), generator=generator)
    keep = (torch.arange(length)[None, None, :] >= cut).float()
    return x * keep, mask * keep


def augment(x, mask, config: AugmentConfig, generator=None, with_scale: bool = True):
    """One random view: crop, channel masking, scaling (when ``with_scale``; a view used
    for forecasting must not rescale its inputs against an unscaled target), jitter."""
    x, mask = crop(x, mask, config.max_crop, generator)
    x, mask = mask_channels(x, mask, config.mask_probability, generator)
    if with_scale:
        x, mask = scale(x, mask, config.scale_std, generator)
    return jitter(x, mask, config.jitter_std, generator)
