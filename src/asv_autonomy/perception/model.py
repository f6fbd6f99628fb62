"""The polyline VAE: a small CNN encoder that predicts the navigable-space boundary.

The latent is the boundary itself: per column band k, a Gaussian posterior
q(b_k | image) = N(mu_k, exp(logvar_k)) over the normalised row of the waterline (0 = top
edge, 1 = bottom edge; water below). The "decoder" is the differentiable rasteriser
(:func:`asv_autonomy.perception.polyline.soft_mask`) plus the region models of the
training objective (:mod:`asv_autonomy.perception.training`).

Besides the waterline the encoder predicts an auxiliary line above it (the top of the
shore: where sky meets land), so that the objective can model the scene as three regions
(sky, shore, water) and the waterline lands between shore and water rather than between
sky and everything else. Only the waterline is part of the public output.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SegmenterConfig:
    """Size and shape of the polyline VAE.

    Args:
        input_width, input_height: [px] size the images are resized to for the network.
        bands: K, number of column bands (polyline vertices).
        channels: feature channels of the four convolution stages.
        hidden: width of the per-column head.
        prior_mean: normalised row of the prior's mean of every band.
        prior_std: normalised std of the prior of every band (wide: the prior is weak).
        sharpness: [1/px at the network input] slope of the soft mask across the boundary.
        min_logvar, max_logvar: range of the posterior log-variance (normalised rows).
    """

    input_width: int = 256
    input_height: int = 192
    bands: int = 32
    channels: tuple[int, ...] = (16, 24, 32, 32)
    hidden: int = 48
    prior_mean: float = 0.5
    prior_std: float = 0.3
    sharpness: float = 2.0
    min_logvar: float = -14.0
    max_logvar: float = 0.0

    def __post_init__(self):
        if self.input_width < 16 or self.input_height < 16:
            raise ValueError(f'input size must be at least 16x16 px, got '
                             f'{self.input_width}x{self.input_height}')
        if self.input_width % 8 or self.input_height % 8:
            raise ValueError(f'input size must be a multiple of 8 px, got '
                             f'{self.input_width}x{self.input_height}')
        if not 1 <= self.bands <= self.input_width // 8:
            raise ValueError(f'bands must be in [1, input_width / 8 = '
                             f'{self.input_width // 8}], got {self.bands}')
        if len(self.channels) != 4 or min(self.channels) < 1 or self.hidden < 1:
            raise ValueError(f'need 4 positive channels and hidden >= 1, got '
                             f'{self.channels}, {self.hidden}')
        if not (0.0 <= self.prior_mean <= 1.0 and self.prior_std > 0.0):
            raise ValueError(f'need prior_mean in [0, 1] and prior_std > 0, got '
                             f'{self.prior_mean}, {self.prior_std}')
        if not (math.isfinite(self.sharpness) and self.sharpness > 0.0):
            raise ValueError(f'sharpness must be > 0 1/px, got {self.sharpness}')
        if not self.min_logvar < self.max_logvar:
            raise ValueError('need min_logvar < max_logvar')

    def to_dict(self) -> dict:
        """Plain dict (lists for tuples) for a checkpoint."""
        d = asdict(self)
        d['channels'] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, values: dict) -> 'SegmenterConfig':
        """Inverse of :meth:`to_dict`; unknown keys or bad values raise TypeError/ValueError."""
        values = dict(values)
        if 'channels' in values:
            values['channels'] = tuple(int(c) for c in values['channels'])
        return cls(**values)


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation,
                  bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PolylineVAE(nn.Module):
    """CNN encoder -> per-band Gaussian posterior of the waterline.

    Args:
        config: network size; ``config.bands`` = K.

    Shapes:
        images: (B, 3, H, W) float RGB in [0, 1] (normally H, W = input size).
        mu, logvar: (B, K) normalised rows.
    """

    def __init__(self, config: SegmenterConfig = SegmenterConfig()):
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            _block(3, c0, 2),                 # 1/2
            _block(c0, c1, 2),                # 1/4
            _block(c1, c1),
            _block(c1, c2, 2),                # 1/8
            _block(c2, c3, dilation=2),
            _block(c3, c3, dilation=4))
        h = config.hidden
        # Per column band: a score for every feature row, for the waterline and for the
        # shore top (soft-argmax over rows gives the line), and the log-variance.
        self.pool = nn.AdaptiveAvgPool2d((None, config.bands))
        self.rows_head = nn.Sequential(
            nn.Conv2d(c3 + 1, h, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(h, h, (3, 3), padding=(2, 2), dilation=(2, 2)), nn.ReLU(inplace=True),
            nn.Conv2d(h, 1, 1))
        # Per band: log-variance of the waterline and the shore top as a fraction of it.
        self.band_head = nn.Sequential(
            nn.Conv1d(c3 + h, h, 3, padding=1), nn.ReLU(inplace=True), nn.Conv1d(h, 2, 1))
        with torch.no_grad():                 # start uncertain, with a thick shore region
            self.band_head[-1].bias.copy_(torch.tensor([-4.0, -1.0]))

    def forward_all(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Waterline posterior and the auxiliary shore-top line.

        Returns:
            mu (B, K), logvar (B, K) of the waterline; top (B, K) normalised row of the
            top of the shore (sky above it), above ``mu``.
        """
        x = self.pool(self.features(images - 0.5))             # (B, C, R, K)
        b, _, r, k = x.shape
        coord = torch.linspace(-1.0, 1.0, r, dtype=x.dtype, device=x.device)
        coord = coord.view(1, 1, r, 1).expand(b, 1, r, k)
        hidden = self.rows_head[:4](torch.cat([x, coord], dim=1))   # (B, h, R, K)
        scores = self.rows_head[4](hidden)                          # (B, 1, R, K)
        prob = torch.softmax(scores, dim=2)
        centres = (torch.arange(r, dtype=x.dtype, device=x.device) + 0.5) / r
        mu = (prob * centres.view(1, 1, r, 1)).sum(2)[:, 0]        # (B, K)
        pooled = torch.cat([(x * prob).sum(2), (hidden * prob).sum(2)], dim=1)
        band = self.band_head(pooled)                               # (B, 2, K)
        lo, hi = self.config.min_logvar, self.config.max_logvar
        logvar = lo + (hi - lo) * torch.sigmoid(band[:, 0])
        top = mu * torch.sigmoid(band[:, 1])
        return mu, logvar, top

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, K): posterior of the waterline in normalised rows."""
        mu, logvar, _ = self.forward_all(images)
        return mu, logvar
