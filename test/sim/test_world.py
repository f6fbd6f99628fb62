"""The simulator's lake world (sim/world.py)."""
import numpy as np
import pytest

from asv_autonomy.sim.world import World, WorldConfig

# Defaults the mission and the README rely on (reported to the lead).
START = (0.0, 0.0)
SURVEY = np.array([(-50.0, 40.0), (150.0, 40.0), (150.0, 190.0), (-50.0, 190.0)])


@pytest.fixture(scope='module')
def world():
    return World()


def test_default_world_is_a_closed_lake_of_lake_size(world):
    xmin, xmax, ymin, ymax = world.extent
    assert 1000.0 < xmax - xmin < 1500.0 and 1000.0 < ymax - ymin < 1500.0
    x, y = np.meshgrid(np.linspace(xmin, xmax, 200), np.linspace(ymin, ymax, 200))
    depth = world.depth(x, y)
    water = depth > 0
    assert 0.4 < water.mean() < 0.9
    assert 30.0 < depth.max() <= 40.0
    # Islands: several separate land patches inside the rim.
    from scipy import ndimage
    assert ndimage.label(~water)[1] >= 5
    # The rim and everything outside the grid is land.
    assert world.is_land(x[[0, -1], :], y[[0, -1], :]).all()
    assert world.is_land([xmin - 50.0, xmax + 1.0], [0.0, 0.0]).all()


def test_start_and_survey_area_are_open_water(world):
    assert world.depth(*START) > 1.0
    x, y = np.meshgrid(np.linspace(-50, 150, 81), np.linspace(40, 190, 61))
    depth = world.depth(x, y)
    assert depth.min() > 2.0
    assert depth.max() - depth.min() > 15.0  # the area spans shelf and slope
    # No land within 50 m of the survey area.
    ring = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for r in (25.0, 50.0):
        assert not world.is_land(x[..., None] + r * np.cos(ring),
                                 y[..., None] + r * np.sin(ring)).any()


def test_depth_is_smooth_and_vectorised(world):
    x = np.linspace(-300, 300, 601)
    d = world.depth(x, 20.0)
    assert d.shape == (601,)
    assert np.abs(np.diff(d)).max() < 1.0  # 1 m apart: no jumps
    assert world.depth(12.5, 30.0) == pytest.approx(world.depth(np.array([12.5]), 30.0)[0])
    assert world.depth(np.zeros((2, 3)), np.zeros((2, 3))).shape == (2, 3)


def test_obstacles_are_in_water_and_deterministic(world):
    assert {o.kind for o in world.obstacles} == {'buoy', 'boat'}
    for o in world.obstacles:
        assert world.depth(o.x, o.y) > 0.5
        assert o.radius > 0 and o.height > 0
    assert World().obstacles == world.obstacles


def test_obstacle_on_land_is_rejected():
    with pytest.raises(ValueError, match='on land'):
        World(WorldConfig(buoy_positions=(-2000.0, 0.0)))


def test_depth_grid_file_is_used_as_is(tmp_path):
    rows, cols = 12, 15
    grid = np.full((rows, cols), 8.0)
    grid[5:7, 6:8] = -2.0  # an island
    path = tmp_path / 'lake.npz'
    np.savez(path, depth=grid)
    world = World(WorldConfig(source=str(path), cell_size=10.0, origin=(0.0, 0.0),
                              smoothing=0.0, buoy_positions=(30.0, 30.0),
                              boat_positions=(100.0, 30.0)))
    assert world.extent == (0.0, 140.0, 0.0, 110.0)
    assert world.depth(30.0, 20.0) == pytest.approx(8.0, abs=1e-6)  # at a cell centre
    assert world.is_land(65.0, 55.0) and not world.is_land(30.0, 80.0)
    assert world.is_land(0.0, 50.0)  # rim closed
    np.save(tmp_path / 'lake.npy', grid)
    npy = World(WorldConfig(source=str(tmp_path / 'lake.npy'), cell_size=10.0,
                            origin=(0.0, 0.0), smoothing=0.0, buoy_positions=(30.0, 30.0),
                            boat_positions=(100.0, 30.0)))
    assert npy.depth(30.0, 20.0) == pytest.approx(8.0, abs=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(crop=(10, 5, 0, 10)), 'crop'),
    (dict(cell_size=0.0), 'cell_size'),
    (dict(min_depth=50.0), 'min_depth'),
    (dict(buoy_positions=(1.0, 2.0, 3.0)), 'pairs'),
])
def test_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WorldConfig(**kwargs)


def test_unreadable_sources_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='cannot read'):
        World(WorldConfig(source=str(tmp_path / 'missing.npz')))
    with pytest.raises(ValueError, match='outside'):
        World(WorldConfig(crop=(100, 130, 0, 20)))
