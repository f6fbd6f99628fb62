"""Land cost: collision penalty inside the clearance, quadratic barrier within the margin."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.costs.land import land_cost
from asv_autonomy.planning.raster import Raster

# Signed distance to land = x [m]: land west of x = 0.
_, XS = np.mgrid[0:3, 0:61] * 1.0
DISTANCE = Raster(XS - 20.0, origin=(-20.0, 0.0), resolution=1.0)


def cost_at(x):
    xy = torch.tensor([[float(x), 1.0]])
    return float(land_cost(xy, DISTANCE, clearance=1.0, margin=10.0, collision_weight=100.0,
                           barrier_weight=4.0)[0])


def test_collisions_cost_the_weight_plus_penetration():
    assert cost_at(0.5) == pytest.approx(100.0 * 1.5 + 4.0)
    assert cost_at(-2.0) == pytest.approx(100.0 * 4.0 + 4.0)


def test_barrier_falls_quadratically_to_zero_at_the_margin():
    assert cost_at(1.0) == pytest.approx(4.0)
    assert cost_at(6.0) == pytest.approx(4.0 * 0.25)
    assert cost_at(11.0) == pytest.approx(0.0, abs=1e-6)
    assert cost_at(30.0) == 0.0
    costs = [cost_at(x) for x in np.linspace(-5.0, 15.0, 41)]
    assert all(a >= b for a, b in zip(costs, costs[1:]))
