"""Projection of the image waterline onto the water plane."""
import math

import numpy as np
import pytest

from asv_autonomy.perception.projection import (BLOCKED, FREE, UNKNOWN, ProjectionConfig,
                                                boundary_ground_points, project_boundary)

INTRINSICS = (100.0, 100.0, 63.5, 47.5)      # 128 x 96 image
PITCH = math.radians(3.0)
CONFIG = ProjectionConfig(mount_height=1.0, pitch=PITCH, max_range=40.0, resolution=0.5,
                          size=100.0)


def row_at_distance(distance, height=1.0, pitch=PITCH, fy=100.0, cy=47.5):
    """Image row whose centre-column ray meets the water ``distance`` m ahead."""
    sp, cp = math.sin(pitch), math.cos(pitch)
    b = (height * cp - distance * sp) / (height * sp + distance * cp)
    return cy + fy * b


def cell(grid, x, y):
    col = int(math.floor((x - grid.origin_x) / grid.resolution))
    row = int(math.floor((y - grid.origin_y) / grid.resolution))
    return grid.data[row, col]


def test_ground_points_of_a_flat_boundary_lie_at_the_expected_distance():
    rows = np.full(128, row_at_distance(20.0))
    fwd, left, blocked = boundary_ground_points(rows, INTRINSICS, CONFIG)
    assert blocked.all()
    np.testing.assert_allclose(fwd, 20.0, atol=1e-6)    # a flat row is a line F = 20 m
    # left = -a * t with t the ray length per unit depth: t = F / (cos p - b sin p).
    b = (row_at_distance(20.0) - 47.5) / 100.0
    t = 20.0 / (math.cos(PITCH) - b * math.sin(PITCH))
    np.testing.assert_allclose(left[[0, -1]], [0.635 * t, -0.635 * t], atol=1e-6)


@pytest.mark.parametrize('yaw', [0.0, math.pi / 2])
def test_flat_boundary_at_20_m_blocks_cells_at_20_m(yaw):
    x0, y0 = 3.2, -7.9
    grid = project_boundary(np.full(128, row_at_distance(20.0)), INTRINSICS, (x0, y0, yaw),
                            CONFIG)
    assert grid.data.dtype == np.int8 and grid.data.shape == (200, 200)
    c, s = math.cos(yaw), math.sin(yaw)

    def at(forward, left):
        return cell(grid, x0 + forward * c - left * s, y0 + forward * s + left * c)

    assert at(20.0, 0.0) == BLOCKED
    assert at(20.0, 8.0) == BLOCKED and at(20.0, -8.0) == BLOCKED
    for d in (0.5, 5.0, 12.0, 19.0):
        assert at(d, 0.0) == FREE
    assert at(21.0, 0.0) == UNKNOWN and at(30.0, 0.0) == UNKNOWN
    assert at(-5.0, 0.0) == UNKNOWN                     # behind the camera
    assert at(5.0, 15.0) == UNKNOWN                     # outside the field of view
    assert (grid.data == BLOCKED).sum() > 40            # a whole line of cells


def test_boundary_at_the_horizon_is_open_water_to_max_range():
    horizon = 47.5 - 100.0 * math.tan(PITCH)
    grid = project_boundary(np.full(128, horizon - 3.0), INTRINSICS, (0.0, 0.0, 0.0), CONFIG)
    assert not (grid.data == BLOCKED).any()
    assert cell(grid, 39.0, 0.0) == FREE
    assert cell(grid, 41.0, 0.0) == UNKNOWN


def test_far_boundary_beyond_max_range_is_not_blocked():
    grid = project_boundary(np.full(128, row_at_distance(80.0)), INTRINSICS, (0.0, 0.0, 0.0),
                            CONFIG)
    assert not (grid.data == BLOCKED).any() and cell(grid, 35.0, 0.0) == FREE


def test_step_boundary_blocks_left_near_and_right_far():
    rows = np.where(np.arange(128) < 64, row_at_distance(10.0), row_at_distance(30.0))
    grid = project_boundary(rows, INTRINSICS, (0.0, 0.0, 0.0), CONFIG)
    # Image left (u < cx) is the boat's left (+y in map for yaw 0).
    assert cell(grid, 10.0, 3.0) == BLOCKED and cell(grid, 20.0, 3.0) == UNKNOWN
    assert cell(grid, 30.0, -8.0) == BLOCKED and cell(grid, 20.0, -3.0) == FREE


def test_grid_origin_is_cell_aligned():
    grid = project_boundary(np.full(128, 60.0), INTRINSICS, (1.234, -5.678, 0.3), CONFIG)
    assert grid.origin_x / 0.5 == pytest.approx(round(grid.origin_x / 0.5))
    assert grid.origin_y / 0.5 == pytest.approx(round(grid.origin_y / 0.5))


def test_bad_inputs():
    with pytest.raises(ValueError):
        ProjectionConfig(mount_height=0.0)
    with pytest.raises(ValueError):
        project_boundary(np.array([]), INTRINSICS, (0, 0, 0), CONFIG)
    with pytest.raises(ValueError):
        project_boundary(np.full(8, 50.0), INTRINSICS, (math.nan, 0, 0), CONFIG)
