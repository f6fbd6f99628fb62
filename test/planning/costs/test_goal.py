"""Terminal goal cost: value-to-go lookup and straight-line time to the goal."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.costs.goal import time_to_goal, value_to_go
from asv_autonomy.planning.raster import Raster


def test_value_to_go_reads_channel_zero_bilinearly():
    ys, xs = np.mgrid[0:4, 0:5] * 10.0
    value = Raster(np.stack([0.5 * xs + ys, -xs]), origin=(0.0, 0.0), resolution=10.0)
    xy = torch.tensor([[12.0, 7.0], [33.0, 21.0]])
    assert torch.allclose(value_to_go(xy, value), 0.5 * xy[:, 0] + xy[:, 1], atol=1e-5)


def test_time_to_goal_is_distance_over_speed():
    xy = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]])
    got = time_to_goal(xy, torch.tensor([0.0, 0.0]), nominal_speed=1.25)
    assert got.shape == (2, 1)
    assert got[0, 0] == pytest.approx(4.0)
    assert got[1, 0] == 0.0
