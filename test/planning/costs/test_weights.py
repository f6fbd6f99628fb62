"""Weighted sum of the cost terms and validation of the weights."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.costs import CostWeights, running_cost, terminal_cost
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.rollout import Scene
from asv_autonomy.planning.vessel import VesselParams

P = VesselParams()
ONES = np.ones((5, 5))


def scene(**kw):
    return Scene(flow=Raster(np.stack([0 * ONES, 0 * ONES, 0 * ONES]), (0.0, 0.0), 10.0),
                 distance=Raster(100.0 * ONES, (0.0, 0.0), 10.0),
                 goal=torch.tensor([30.0, 40.0]), **kw)


def test_running_cost_sums_energy_overspeed_and_information():
    state = torch.tensor([[0.0, 0.0, 0.0, 3.0, 0.0, 0.0]])
    thrust = torch.tensor([[16.0, 16.0]])
    weights = CostWeights(energy=0.01, overspeed=2.0, information=3.0)
    base = running_cost(state, thrust, scene(max_speed=2.0), weights, 0.5, P)
    power = P.thruster_power_coefficient * 2 * 64.0
    assert float(base[0]) == pytest.approx(0.01 * power * 0.5 + 2.0 * 1.0 * 0.5, rel=1e-5)
    informed = scene(max_speed=2.0, information=Raster(0.2 * ONES, (0.0, 0.0), 10.0))
    got = running_cost(state, thrust, informed, weights, 0.5, P)
    assert float(got[0]) == pytest.approx(float(base[0]) - 3.0 * 0.2 * 0.5, rel=1e-5)


def test_terminal_cost_uses_value_when_given_else_distance_at_the_lower_speed():
    state = torch.zeros(1, 6)
    weights = CostWeights(terminal=2.0, nominal_speed=1.25)
    assert float(terminal_cost(state, scene(), weights)[0]) == pytest.approx(2.0 * 50 / 1.25)
    valued = scene(value=Raster(7.0 * ONES, (0.0, 0.0), 10.0))
    assert float(terminal_cost(state, valued, weights)[0]) == pytest.approx(14.0)
    # A speed limit below the nominal speed (holding with GPS lost) prices the distance
    # at the limit; a higher one changes nothing.
    slow, fast = scene(max_speed=0.5), scene(max_speed=3.0)
    assert float(terminal_cost(state, slow, weights)[0]) == pytest.approx(2.0 * 50 / 0.5)
    assert float(terminal_cost(state, fast, weights)[0]) == pytest.approx(2.0 * 50 / 1.25)


@pytest.mark.parametrize('field, value', [('energy', -1.0), ('collision', float('nan')),
                                          ('nominal_speed', 0.0), ('land_margin', 0.0)])
def test_bad_weights_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        CostWeights(**{field: value})
