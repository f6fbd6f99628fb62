"""Sonar over a bathymetry grid: the depth the simulator's world has, with its noise model."""
import math

import numpy as np
import pytest

from asv_autonomy.drivers.sonar_grid import SonarGrid, SonarGridConfig
from asv_autonomy.measurements import InvalidInput
from asv_autonomy.sim.sensors import SonarConfig
from asv_autonomy.sim.world import World, WorldConfig

CELL = 10.0
ORIGIN = (-20.0, -30.0)


@pytest.fixture
def grid_file(tmp_path):
    """A 6 x 8 depth grid (rows = y, columns = x): depth = 5 + 0.1 x_index + 1 y_index, with
    the lake closed by World (outer ring set to land) and no smoothing."""
    rows, cols = np.mgrid[0:6, 0:8]
    path = tmp_path / 'depth.npy'
    np.save(path, 5.0 + 0.1 * cols + 1.0 * rows)
    return path


def _config(path, **kwargs):
    world = WorldConfig(source=str(path), cell_size=CELL, origin=ORIGIN, smoothing=0.0,
                        buoy_positions=(), boat_positions=())
    return SonarGridConfig(world=world, **kwargs)


def test_depth_is_bilinear_between_cell_centres_and_nan_outside(grid_file):
    sonar = SonarGrid(_config(grid_file))
    grid = sonar.world.grid
    # Cell centre (row 2, column 3) is at x = -20 + 30, y = -30 + 20.
    assert sonar.depth(10.0, -10.0) == pytest.approx(grid[2, 3])
    # Halfway between four interior centres: their mean; a quarter along x: linear.
    assert sonar.depth(15.0, -5.0) == pytest.approx(grid[2:4, 3:5].mean())
    assert sonar.depth(12.5, -10.0) == pytest.approx(0.75 * grid[2, 3] + 0.25 * grid[2, 4])
    # Inside the interior the field is linear, so bilinear is exact: 5 + 0.1 i + j.
    x, y = np.array([0.0, 7.3, 33.0]), np.array([-20.0, -11.1, 5.5])
    expected = 5.0 + 0.1 * (x - ORIGIN[0]) / CELL + (y - ORIGIN[1]) / CELL
    np.testing.assert_allclose(sonar.depth(x, y), expected)
    # The rim is land (the lake is closed); beyond the outermost centres there is nothing.
    assert sonar.depth(-20.0, -30.0) <= 0.0
    xmin, xmax, ymin, ymax = sonar.extent
    assert (xmin, xmax, ymin, ymax) == (-20.0, 50.0, -30.0, 20.0)
    out = sonar.depth([xmin - 0.01, xmax + 0.01, 0.0, 0.0, np.nan],
                      [0.0, 0.0, ymin - 0.01, ymax + 0.01, 0.0])
    assert np.isnan(out).all()


def test_spline_option_is_the_simulators_depth(grid_file):
    config = _config(grid_file, interpolation='spline')
    sonar, world = SonarGrid(config), World(config.world)
    x, y = np.array([1.0, 14.2, 27.0]), np.array([-12.0, 3.3, -25.0])
    np.testing.assert_allclose(sonar.depth(x, y), world.depth(x, y))
    assert np.isnan(sonar.depth(60.0, 0.0))


def test_default_config_is_the_simulator_lake():
    """No arguments: the built-in simulator's default world, so both profiles map one lake."""
    sonar, world = SonarGrid(), World(WorldConfig())
    np.testing.assert_array_equal(sonar.world.grid, world.grid)
    # The simulator's start pose (0, 0) is in water.
    assert sonar.depth(0.0, 0.0) > 1.0


def test_measure_is_depth_below_the_transducer_with_the_simulators_noise(grid_file):
    sonar_config = SonarConfig(transducer_draft=0.3, noise_fraction=0.02, noise_floor=0.05)
    sonar = SonarGrid(_config(grid_file, sonar=sonar_config, seed=3))
    true_range = float(sonar.depth(7.3, -11.1)) - 0.3
    readings = [sonar.measure(100.0 + k, 7.3, -11.1) for k in range(4000)]
    values = np.array([r.value for r in readings])
    expected_var = (0.02 * true_range) ** 2 + 0.05 ** 2
    assert readings[5].stamp == 105.0
    assert all(r.variance == pytest.approx(expected_var) for r in readings)
    assert values.mean() == pytest.approx(true_range, abs=4 * math.sqrt(expected_var / 4000))
    assert values.std() == pytest.approx(math.sqrt(expected_var), rel=0.05)
    # Same seed, same readings; another seed, others.
    again = SonarGrid(_config(grid_file, sonar=sonar_config, seed=3))
    assert again.measure(0.0, 7.3, -11.1).value == readings[0].value
    other = SonarGrid(_config(grid_file, sonar=sonar_config, seed=4))
    assert other.measure(0.0, 7.3, -11.1).value != readings[0].value


def test_out_of_range_follows_rep_117(grid_file):
    # Deeper than max_range -> +inf; on the land rim (too close) -> -inf.
    sonar = SonarGrid(_config(grid_file, sonar=SonarConfig(max_range=7.0, noise_floor=0.0,
                                                          noise_fraction=0.0)))
    assert sonar.measure(0.0, 20.0, 10.0).value == math.inf     # 9.4 m of water
    assert sonar.measure(0.0, -20.0, 0.0).value == -math.inf    # land
    assert sonar.measure(0.0, 0.0, -20.0).value == pytest.approx(5.0 + 0.2 + 1.0 - 0.1)


def test_positions_without_depth_are_refused_with_a_reason(grid_file):
    sonar = SonarGrid(_config(grid_file))
    with pytest.raises(InvalidInput) as err:
        sonar.measure(0.0, 500.0, 0.0)
    assert err.value.reason == 'outside_grid'
    for x, y in ((math.nan, 0.0), (0.0, math.inf)):
        with pytest.raises(InvalidInput) as err:
            sonar.measure(0.0, x, y)
        assert err.value.reason == 'nan'


def test_config_is_validated():
    with pytest.raises(ValueError, match='interpolation'):
        SonarGridConfig(interpolation='nearest')
