"""Workspace: signed distance, clearance, obstacles, blocked cells, constructors."""
import time

import numpy as np
import pytest
import torch

from asv_autonomy.planning.workspace import Workspace
from asv_autonomy.sim.world import World

SQUARE = [(0.0, 0.0), (200.0, 0.0), (200.0, 100.0), (0.0, 100.0)]


def test_polygon_signed_distance_is_metric():
    ws = Workspace.from_polygon(SQUARE, 2.0)
    d = ws.distance_to_land(torch.tensor([[100.0, 50.0], [20.0, 50.0], [100.0, -20.0]]))
    assert d[0] == pytest.approx(50.0, abs=2.5)
    assert d[1] == pytest.approx(20.0, abs=2.5)
    assert d[2] == pytest.approx(-20.0, abs=2.5)
    assert ws.is_water(torch.tensor([20.0, 50.0])).item()
    assert not ws.is_water(torch.tensor([20.0, 50.0]), clearance=30.0).item()


def test_obstacles_are_discs_of_land():
    ws = Workspace.from_polygon(SQUARE, 2.0, obstacles=((100.0, 50.0, 10.0),))
    d = ws.distance_to_land(torch.tensor([[100.0, 50.0], [125.0, 50.0]]))
    assert d[0] == pytest.approx(-10.0, abs=1.0)
    assert d[1] == pytest.approx(15.0, abs=1.0)
    with pytest.raises(ValueError, match='radii'):
        Workspace.from_polygon(SQUARE, 2.0, obstacles=((1.0, 1.0, 0.0),))


def test_with_blocked_marks_cells_and_forgets_earlier_ones():
    ws = Workspace.from_polygon(SQUARE, 2.0)
    occupancy = np.zeros((20, 20), np.int8)
    occupancy[10, 10] = 100   # centre at (50 + 10, 20 + 10) with 1 m cells from (50, 20)
    occupancy[0, 0] = -1      # unknown: ignored
    occupancy[5, 5] = 49      # below the threshold: ignored
    blocked = ws.with_blocked(occupancy, (50.0, 20.0), 1.0)
    assert not blocked.is_water(torch.tensor([60.0, 30.0])).item()
    assert blocked.is_water(torch.tensor([55.0, 25.0])).item()
    coarse = np.zeros((2, 2), np.int8)
    coarse[1, 1] = 100        # a 20 m cell centred at (130, 70) covers several 2 m cells
    again = blocked.with_blocked(coarse, (110.0, 50.0), 20.0)
    assert again.is_water(torch.tensor([60.0, 30.0])).item()  # earlier block forgotten
    assert not again.is_water(torch.tensor([[125.0, 65.0], [135.0, 75.0]])).any()


def test_from_world_lake_and_blocked_speed():
    world = World()
    ws = Workspace.from_world(world)
    assert ws.resolution == 5.0
    ny, nx = ws.water.shape
    assert not ws.water[0].any() and not ws.water[:, -1].any()   # closed rim
    boat = world.obstacles[-1]
    assert ws.distance_to_land(torch.tensor([boat.x, boat.y])) < 0
    assert ws.is_water(torch.tensor([boat.x + boat.radius + 8.0, boat.y])).item()
    occupancy = np.zeros((200, 200), np.int8)
    occupancy[90:110, 90:110] = 100
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        ws.with_blocked(occupancy, (-50.0, -50.0), 0.5)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.04  # ~15 ms alone on this CPU; the budget is 20 ms


def test_bad_inputs_refused():
    with pytest.raises(ValueError, match='no water'):
        Workspace(np.zeros((4, 4), bool), (0.0, 0.0), 1.0)
    with pytest.raises(ValueError, match='polygon'):
        Workspace.from_polygon([(0, 0), (1, 1)], 1.0)
    with pytest.raises(ValueError, match='2-D'):
        Workspace.from_polygon(SQUARE, 2.0).with_blocked(np.zeros(3), (0, 0), 1.0)
