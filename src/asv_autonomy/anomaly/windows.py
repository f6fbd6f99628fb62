"""Robust per-channel normalisation and sliding windows with missing-data masks.

The detector forecasts each channel's value at grid step ``t`` from the ``length`` steps
before it. Inputs are normalised channel values plus a mask (1 observed, 0 missing);
missing values are 0 after normalisation, so a GPS outage never puts a NaN into a tensor:
the mask tells the network the value is absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .series import AlignedSeries

__all__ = ['Normaliser', 'Windows', 'normalise', 'make_windows']

# IQR of a standard normal: IQR / this is a robust std.
_IQR_PER_STD = 1.3489795


@dataclass(frozen=True, eq=False)    # arrays: no element-wise ==
class Normaliser:
    """Per-channel ``(value - centre) / scale``, fitted on training data only.

    Args:
        centre: per-channel median of the training values.
        scale: per-channel robust spread (IQR / 1.349, or 1.4826 MAD when the IQR is 0),
            floored at ``min_scale``; channels constant (or never observed) in training
            get scale 1, so any change of them stands out in raw units.
        clip: normalised values are clipped to [-clip, clip] (a 1000 m GPS jump must not
            saturate the network's activations).

    Shapes:
        centre, scale ``(C,)``.
    """

    centre: np.ndarray
    scale: np.ndarray
    clip: float = 20.0

    def __post_init__(self):
        centre = np.asarray(self.centre, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        if centre.ndim != 1 or centre.shape != scale.shape:
            raise ValueError(f'centre and scale must be equal (C,) shapes, got '
                             f'{centre.shape} and {scale.shape}')
        if not (np.all(np.isfinite(centre)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError('centre must be finite and scale finite and > 0')
        if not self.clip > 0:
            raise ValueError(f'clip must be > 0, got {self.clip}')
        object.__setattr__(self, 'centre', centre)
        object.__setattr__(self, 'scale', scale)

    @classmethod
    def fit(cls, series: Sequence[AlignedSeries], min_scale: float = 1e-3,
            clip: float = 20.0) -> 'Normaliser':
        """Centre and scale of every channel over all observed values of ``series``
        (which must share channel order)."""
        if not series:
            raise ValueError('Normaliser.fit needs at least one series')
        channels = series[0].channels
        if any(s.channels != channels for s in series):
            raise ValueError('all training series must have the same channels in the same order')
        values = np.concatenate([s.values for s in series], axis=0)
        centre = np.zeros(len(channels), np.float32)
        scale = np.ones(len(channels), np.float32)
        for j in range(len(channels)):
            column = values[:, j][np.isfinite(values[:, j])]
            if column.size == 0:
                continue
            centre[j] = np.median(column)
            q25, q75 = np.percentile(column, [25.0, 75.0])
            spread = (q75 - q25) / _IQR_PER_STD
            if spread <= 0.0:
                spread = 1.4826 * np.median(np.abs(column - centre[j]))
            if spread <= 0.0:
                # Constant in training (e.g. GPS fix always 1): deviations count in raw units.
                spread = 1.0 if np.ptp(column) == 0.0 else np.std(column)
            scale[j] = max(float(spread), min_scale)
        return cls(centre, scale, clip)

    def transform(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised values (0 where missing) and the mask.

        Shapes:
            values ``(..., C)`` with NaN where missing -> both outputs ``(..., C)`` float32.
        """
        values = np.asarray(values, dtype=np.float32)
        if values.shape[-1] != self.centre.shape[0]:
            raise ValueError(f'expected {self.centre.shape[0]} channels, got {values.shape[-1]}')
        mask = np.isfinite(values)
        with np.errstate(invalid='ignore'):
            normed = np.clip((values - self.centre) / self.scale, -self.clip, self.clip)
        return np.where(mask, normed, 0.0).astype(np.float32), mask.astype(np.float32)


def normalise(series: AlignedSeries, normaliser: Normaliser) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole series as tensors: normalised values and mask, each ``(N, C)``."""
    values, mask = normaliser.transform(series.values)
    return torch.from_numpy(values), torch.from_numpy(mask)


@dataclass
class Windows:
    """Forecasting windows of one or more series.

    Attributes:
        x: normalised inputs, 0 where missing.
        mask: 1 where the input was observed.
        target: normalised value at the step after each window (0 where missing).
        target_mask: 1 where the target was observed.
        end_index: grid index of each window's target step in its series.

    Shapes:
        x, mask ``(B, C, L)``; target, target_mask ``(B, C)``; end_index ``(B,)``.
    """

    x: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor
    target_mask: torch.Tensor
    end_index: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, index) -> 'Windows':
        """Windows at ``index`` (a tensor or array of positions)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return Windows(self.x[index], self.mask[index], self.target[index],
                       self.target_mask[index], self.end_index[index])

    @staticmethod
    def concat(parts: Sequence['Windows']) -> 'Windows':
        return Windows(*(torch.cat([getattr(p, name) for p in parts]) for name in
                         ('x', 'mask', 'target', 'target_mask', 'end_index')))


def make_windows(values: torch.Tensor, mask: torch.Tensor, length: int,
                 stride: int = 1) -> Windows:
    """Windows of ``length`` steps, each followed by its one-step forecasting target.

    Args:
        values: normalised values (0 where missing), e.g. from :func:`normalise`.
        mask: 1 where observed.
        length: L, input steps per window.
        stride: steps between consecutive windows.

    Returns:
        windows whose targets are grid steps ``length, length + stride, ...``; none when
        the series has at most ``length`` steps.

    Shapes:
        values, mask ``(N, C)`` -> see :class:`Windows`, ``B = ceil((N - L) / stride)``.
    """
    if length < 1 or stride < 1:
        raise ValueError(f'length and stride must be >= 1, got {length}, {stride}')
    if values.shape != mask.shape or values.ndim != 2:
        raise ValueError(f'values and mask must be equal (N, C) shapes, got '
                         f'{tuple(values.shape)}, {tuple(mask.shape)}')
    n, c = values.shape
    ends = torch.arange(length, n, stride, dtype=torch.long)
    if ends.numel() == 0:
        empty = torch.zeros((0, c, length))
        return Windows(empty, empty.clone(), torch.zeros((0, c)), torch.zeros((0, c)),
                       torch.zeros(0, dtype=torch.long))
    # unfold: (N - L + 1, C, L) view; window k covers steps k .. k + L - 1.
    starts = ends - length
    x = values.unfold(0, length, 1)[starts]
    m = mask.unfold(0, length, 1)[starts]
    return Windows(x.contiguous(), m.contiguous(), values[ends].clone(), mask[ends].clone(),
                   ends)
