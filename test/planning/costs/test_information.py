"""Information reward: map uncertainty sampled along the path."""
import numpy as np
import torch

from asv_autonomy.planning.costs.information import information_gain
from asv_autonomy.planning.raster import Raster


def test_information_is_the_sampled_uncertainty_times_dt():
    _, xs = np.mgrid[0:3, 0:11] * 2.0
    std = Raster(0.1 * xs, origin=(0.0, 0.0), resolution=2.0)
    xy = torch.tensor([[5.0, 1.0], [20.0, 3.0], [50.0, 0.0]])
    got = information_gain(xy, std, dt=0.5)
    assert torch.allclose(got, torch.tensor([0.25, 1.0, 1.0]), atol=1e-6)
