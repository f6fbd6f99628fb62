"""The navigable-space boundary as a polyline over column bands, and its rasterisation.

The boundary is one value per column band: K bands split the image width evenly, and the
boundary is given at each band centre, linearly interpolated across the columns between
centres (held constant beyond the first and last centre). Water is the region BELOW the
boundary, so it is always connected to the bottom of the image.

Coordinates: pixel centres at integer (u, v), u right, v down (OpenCV). A normalised
boundary ``b`` in [0, 1] is the row ``b * H - 0.5`` [px]: 0 is the top edge of the image,
1 its bottom edge. Pixel row ``v`` is water when ``v > b * H - 0.5``.
"""
from __future__ import annotations

import numpy as np
import torch


def band_centres(bands: int, width: int) -> np.ndarray:
    """Column [px] of each band centre: (K,) float, ``(k + 0.5) * width / K - 0.5``."""
    return (np.arange(bands) + 0.5) * (width / bands) - 0.5


def _interpolation(bands: int, width: int):
    """Left band index (W,) and weight of the right neighbour (W,) for every column."""
    pos = np.clip((np.arange(width) + 0.5) * (bands / width) - 0.5, 0.0, bands - 1.0)
    left = np.minimum(np.floor(pos).astype(np.int64), max(bands - 2, 0))
    frac = pos - left if bands > 1 else np.zeros(width)
    return left, frac


def columns_from_bands(boundary: torch.Tensor, width: int) -> torch.Tensor:
    """Per-column boundary from per-band values (linear interpolation between centres).

    Args:
        boundary: (..., K) values at the band centres (any unit).
        width: [px] image width W.

    Returns:
        (..., W) value at each column, differentiable in ``boundary``.
    """
    bands = boundary.shape[-1]
    if bands == 1:
        return boundary.expand(*boundary.shape[:-1], width)
    left, frac = _interpolation(bands, width)
    left = torch.as_tensor(left, device=boundary.device)
    frac = torch.as_tensor(frac, dtype=boundary.dtype, device=boundary.device)
    return boundary[..., left] * (1.0 - frac) + boundary[..., left + 1] * frac


def soft_mask(boundary: torch.Tensor, height: int, width: int,
              sharpness: float = 1.0) -> torch.Tensor:
    """Differentiable water probability below the boundary.

    Args:
        boundary: (B, K) normalised rows of the boundary at the band centres (0 = top edge,
            1 = bottom edge of the image); values outside [0, 1] are allowed.
        height, width: [px] size of the mask.
        sharpness: [1/px] slope of the logistic edge across the boundary.

    Returns:
        (B, H, W) float: ``sigmoid(sharpness * (v - (b * H - 0.5)))``, ~1 below the
        boundary (water), ~0 above it.
    """
    if boundary.dim() != 2:
        raise ValueError(f'boundary must be (B, K), got {tuple(boundary.shape)}')
    rows = columns_from_bands(boundary, width) * height - 0.5               # (B, W) [px]
    v = torch.arange(height, dtype=boundary.dtype, device=boundary.device)
    return torch.sigmoid(sharpness * (v[None, :, None] - rows[:, None, :]))


def boundary_rows(boundary_rows_px: np.ndarray, width: int) -> np.ndarray:
    """(K,) band boundary rows [px] -> (W,) per-column rows [px] (float64)."""
    values = np.asarray(boundary_rows_px, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f'boundary rows must be a non-empty (K,) array, got {values.shape}')
    left, frac = _interpolation(values.size, width)
    if values.size == 1:
        return np.full(width, values[0])
    return values[left] * (1.0 - frac) + values[left + 1] * frac


def hard_mask(boundary_rows_px: np.ndarray, height: int, width: int) -> np.ndarray:
    """Water mask of a band polyline.

    Args:
        boundary_rows_px: (K,) boundary row [px] at each band centre (pixel-centre
            convention); or (W,) when K == W (one band per column).
        height, width: [px] size of the mask.

    Returns:
        (H, W) bool, True (water) where ``v > row`` of the pixel's column.
    """
    rows = boundary_rows(boundary_rows_px, width)
    return np.arange(height)[:, None] > rows[None, :]


def polyline_pixels(boundary: np.ndarray, width: int, height: int) -> np.ndarray:
    """Polyline vertices of a normalised band boundary.

    Args:
        boundary: (K,) normalised rows (0 = top edge, 1 = bottom edge).
        width, height: [px] image size.

    Returns:
        (K, 2) float64 (u, v) [px] at the band centres, pixel-centre convention.
    """
    b = np.asarray(boundary, dtype=np.float64).reshape(-1)
    return np.stack([band_centres(b.size, width), b * height - 0.5], axis=1)
