"""Informative sampling (planning/informative.py): candidate goals, the coverage model and
the budgeted information-per-cost choice."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.informative import (CoverageModel, candidate_points, choose_goal,
                                               gain_at)
from asv_autonomy.planning.raster import Raster

PENTAGON = np.array([[0.0, 0.0], [100.0, 30.0], [90.0, 70.0], [40.0, 95.0], [-10.0, 50.0]])


def inside_distance(polygon, points):
    """(P,) [m] distance of each point inside the nearest edge of a convex polygon."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    inward = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    inward /= np.hypot(inward[:, 0], inward[:, 1])[:, None]
    inward *= np.sign(((polygon.mean(0) - polygon) * inward).sum(1))[:, None]
    return np.einsum('pvi,vi->pv', points[:, None, :] - polygon[None], inward).min(axis=1)


@pytest.mark.parametrize('spacing, inset', [(10.0, 5.0), (7.0, 0.0), (20.0, 12.0)])
def test_candidates_fill_the_inset_polygon_on_the_spacing_grid(spacing, inset):
    points = candidate_points(PENTAGON, spacing, inset)
    assert points.ndim == 2 and points.shape[1] == 2 and len(points)
    assert (inside_distance(PENTAGON, points) >= inset - 1e-9).all()
    low = PENTAGON.min(0) + inset
    steps = (points - low) / spacing
    assert np.allclose(steps, np.round(steps))
    # Every grid node of the bounding box that lies inside the inset polygon is a candidate.
    xs = np.arange(low[0], PENTAGON.max(0)[0] - inset + 1e-9, spacing)
    ys = np.arange(low[1], PENTAGON.max(0)[1] - inset + 1e-9, spacing)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    assert len(points) == (inside_distance(PENTAGON, grid) >= inset - 1e-9).sum()
    # The orientation of the polygon does not matter.
    assert np.array_equal(candidate_points(PENTAGON[::-1], spacing, inset), points)


def test_no_candidates_when_the_inset_swallows_the_polygon():
    assert len(candidate_points(np.array([[0, 0], [10, 0], [10, 10], [0, 10.0]]), 2.0, 6.0)) == 0


def test_coverage_removes_variance_near_the_track_only():
    model = CoverageModel((0.0, 100.0, 0.0, 50.0), 2.0, 5.0)
    std = model.raster()
    assert std.shape == (26, 51) and torch.all(std.values == 1.0)   # prior: variance 1
    track = np.stack([np.linspace(10.0, 90.0, 17), np.full(17, 10.0)], axis=1)   # 5 m apart
    model.observe(track)
    std = model.raster()

    def at(x, y):
        return float(std.sample(torch.tensor([x, y]))[0])

    assert at(50.0, 10.0) < 0.05 and at(30.0, 12.0) < 0.3         # on and next to the track
    assert at(50.0, 40.0) > 0.99 and at(50.0, 30.0) > 0.95        # 6 and 4 footprints off
    assert at(50.0, 10.0) < at(50.0, 15.0) < at(50.0, 20.0) < at(50.0, 30.0)
    assert (np.diff(model.variance[:, 25][5:]) >= 0).all()        # grows away from y = 10


def test_repeated_samples_at_one_point_do_not_clear_the_map_far_away():
    once = CoverageModel((0.0, 100.0, 0.0, 100.0), 2.0, 5.0)
    once.observe(np.array([50.0, 50.0]))
    model = CoverageModel((0.0, 100.0, 0.0, 100.0), 2.0, 5.0)
    for _ in range(200):                   # 20 s at 10 Hz, boat at rest
        model.observe(np.array([50.0, 50.0]))
    far = torch.tensor([50.0, 60.0])       # 2 footprints away
    std_once = float(once.raster().sample(far)[0])
    assert std_once > 0.9                  # one sample leaves most variance there
    # The same place sampled again brings (almost) nothing new far from it.
    assert float(model.raster().sample(far)[0]) > 0.5 * std_once


def test_choose_goal_prefers_gain_per_cost_within_the_budget():
    candidates = np.zeros((4, 2))
    gain = np.array([1.0, 2.0, 4.0, 0.5])
    cost = np.array([10.0, 10.0, 60.0, 0.0])
    reach = np.array([10.0, 12.0, 70.0, 1.0])
    # Scores with offset 10: 0.05, 0.1, 0.057, 0.05 -> index 1.
    assert choose_goal(candidates, gain, cost, reach, np.inf, 10.0) == 1
    # Without the offset the adjacent low-gain candidate wins by its zero cost.
    assert choose_goal(candidates, gain, cost, reach, np.inf, 1e-9) == 3
    # Out of budget candidates are never chosen; unreachable (inf cost) neither.
    assert choose_goal(candidates, gain, cost, reach, 11.0, 10.0) == 0
    cost[0] = np.inf
    assert choose_goal(candidates, gain, cost, reach, 11.0, 10.0) == 3
    assert choose_goal(candidates, gain, cost, reach, 0.5, 10.0) is None      # nothing fits
    assert choose_goal(candidates, np.zeros(4), cost, reach, np.inf, 10.0) is None  # no gain
    with pytest.raises(ValueError, match='same length'):
        choose_goal(candidates, gain[:3], cost, reach, np.inf, 10.0)


def test_gain_is_the_variance_of_the_information_raster():
    std = Raster(np.array([[0.0, 1.0], [2.0, 3.0]]), (0.0, 0.0), 10.0)
    gain = gain_at(std, np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 10.0], [10.0, 10.0]]))
    assert np.allclose(gain, [0.0, 1.0, 2.5 ** 2, 9.0])
