"""Effort cost: electrical energy of the delivered thrust."""
import pytest
import torch

from asv_autonomy.planning.costs.effort import energy
from asv_autonomy.planning.vessel import VesselParams

P = VesselParams()


def test_energy_is_power_of_delivered_thrust_times_dt():
    thrust = torch.tensor([[20.0, 20.0], [-9.0, 0.0]])
    got = energy(thrust, torch.tensor([1.0, 0.5]), 0.2, P)
    k = P.thruster_power_coefficient
    assert got[0] == pytest.approx(k * (20.0 ** 1.5 + 10.0 ** 1.5) * 0.2, rel=1e-5)
    assert got[1] == pytest.approx(k * 27.0 * 0.2, rel=1e-5)
    assert float(energy(torch.zeros(1, 2), torch.ones(2), 0.2, P)[0]) == 0.0
