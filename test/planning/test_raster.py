"""Bilinear raster lookups shared by the planner's costs and value functions."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.raster import Raster


def test_a_plane_is_reproduced_exactly_inside_and_clamped_outside():
    ys, xs = np.mgrid[0:5, 0:7].astype(float)
    plane = 2.0 * (10.0 + 3.0 * xs) - 0.5 * (-4.0 + 3.0 * ys)
    raster = Raster(np.stack([plane, -plane]), origin=(10.0, -4.0), resolution=3.0)
    xy = torch.tensor([[11.3, -2.2], [25.9, 7.9], [10.0, -4.0]])
    got = raster.sample(xy)
    expected = 2.0 * xy[:, 0] - 0.5 * xy[:, 1]
    assert got.shape == (3, 2)
    assert torch.allclose(got[:, 0], expected, atol=1e-4)
    assert torch.allclose(got[:, 1], -expected, atol=1e-4)
    outside = raster.sample(torch.tensor([[-100.0, -100.0], [1e4, 1e4]]))[:, 0]
    assert outside[0] == pytest.approx(plane[0, 0])
    assert outside[1] == pytest.approx(plane[-1, -1])


def test_a_nan_position_samples_nan_and_leaves_the_others_alone():
    raster = Raster(np.arange(12.0).reshape(3, 4), origin=(0.0, 0.0), resolution=1.0)
    xy = torch.tensor([[float('nan'), 1.0], [1.0, float('nan')], [2.0, 1.0]])
    got = raster.sample(xy)[:, 0]
    assert torch.isnan(got[:2]).all() and got[2] == 6.0


def test_batched_shapes_and_cell_centres():
    raster = Raster(np.arange(12.0).reshape(3, 4), origin=(0.0, 0.0), resolution=1.0)
    centres = raster.cell_centres()
    assert centres.shape == (3, 4, 2)
    assert torch.allclose(raster.sample(centres)[..., 0],
                          torch.arange(12.0).reshape(3, 4))
    assert raster.extent == (0.0, 3.0, 0.0, 2.0)


def test_bad_rasters_are_refused():
    with pytest.raises(ValueError, match='resolution'):
        Raster(np.zeros((3, 3)), (0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match='ny, nx >= 2'):
        Raster(np.zeros((1, 3)), (0.0, 0.0), 1.0)
