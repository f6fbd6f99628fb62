"""Polyline rasterisation: geometry conventions and gradients."""
import numpy as np
import pytest
import torch

from asv_autonomy.perception.polyline import (band_centres, columns_from_bands, hard_mask,
                                              polyline_pixels, soft_mask)


def test_soft_mask_is_water_below_the_boundary():
    boundary = torch.tensor([[0.25, 0.25, 0.6, 0.6]])
    mask = soft_mask(boundary, 40, 80, sharpness=50.0)[0]
    assert mask.shape == (40, 80)
    # Left half: boundary at row 0.25 * 40 - 0.5 = 9.5; right half: 23.5.
    assert mask[:9, 5].max() < 1e-6 and mask[10:, 5].min() > 1 - 1e-6
    assert mask[:23, 75].max() < 1e-6 and mask[24:, 75].min() > 1 - 1e-6
    # Half-way between the band centres the boundary is interpolated linearly.
    col = 40
    centres = band_centres(4, 80)
    frac = (col - centres[1]) / (centres[2] - centres[1])
    row = (0.25 + 0.35 * frac) * 40 - 0.5
    assert mask[int(np.floor(row)), col] < 0.5 < mask[int(np.floor(row)) + 1, col]


def test_hard_mask_matches_soft_mask_threshold():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 0.9, size=8)
    soft = soft_mask(torch.tensor(b)[None], 48, 64, sharpness=4.0)[0].numpy() > 0.5
    hard = hard_mask(b * 48 - 0.5, 48, 64)
    assert hard.dtype == bool and hard.shape == (48, 64)
    assert (soft == hard).mean() > 0.999


def test_polyline_pixels_at_band_centres():
    pts = polyline_pixels(np.array([0.0, 0.5, 1.0]), width=30, height=20)
    np.testing.assert_allclose(pts, [[4.5, -0.5], [14.5, 9.5], [24.5, 19.5]])


def test_columns_from_bands_holds_ends_and_interpolates():
    b = torch.tensor([[1.0, 3.0]])
    cols = columns_from_bands(b, 8)[0].numpy()
    np.testing.assert_allclose(cols[:2], 1.0)          # left of the first centre
    np.testing.assert_allclose(cols[-2:], 3.0)
    assert np.all(np.diff(cols) >= 0)


def test_soft_mask_gradient_matches_finite_differences():
    torch.manual_seed(0)
    b = (0.3 + 0.4 * torch.rand(2, 5, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: soft_mask(x, 12, 20, sharpness=0.7), (b,),
                                    eps=1e-6, atol=1e-5)


def test_soft_mask_gradient_moves_the_boundary_towards_the_target():
    target = torch.zeros(1, 30, 40)
    target[:, 20:] = 1.0                       # water below row 19.5: b = 20 / 30
    b = torch.full((1, 6), 0.3, requires_grad=True)
    loss = ((soft_mask(b, 30, 40, 0.5) - target) ** 2).sum()
    loss.backward()
    assert (b.grad < 0).all()                  # increasing b (lower boundary) helps


def test_soft_mask_rejects_bad_shape():
    with pytest.raises(ValueError):
        soft_mask(torch.zeros(4), 10, 10)
