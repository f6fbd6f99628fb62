"""Speed-limit cost (GPS lost -> slow)."""
import math

import pytest
import torch

from asv_autonomy.planning.costs.speed import overspeed


def test_overspeed_is_squared_excess_over_the_limit():
    state = torch.tensor([[0.0, 0.0, 1.0, 3.0, 4.0, 0.2], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    got = overspeed(state, torch.tensor(2.0), dt=0.5)
    assert got[0] == pytest.approx(9.0 * 0.5)
    assert got[1] == 0.0
    assert torch.equal(overspeed(state, math.inf, dt=0.5), torch.zeros(2))
