"""MapGrid: the cells a map is published on."""
import numpy as np
import pytest

from asv_autonomy.mapping.grid import MapGrid, MapGridConfig


def test_fixed_extent_cells_are_centred_and_row_major():
    grid = MapGrid(MapGridConfig(extent=(-10.0, 10.0, 0.0, 6.0), resolution=2.0))
    cells = grid.cells()
    assert cells.shape == (3, 10) and cells.resolution == 2.0
    assert (cells.origin_x, cells.origin_y) == (-10.0, 0.0)
    np.testing.assert_allclose(cells.xy[0], [-9.0, 1.0])
    np.testing.assert_allclose(cells.xy[10], [-9.0, 3.0])     # next row: y + resolution
    grid.cover(np.array([[500.0, 500.0]]))                    # a fixed extent stays
    assert grid.cells() is cells


def test_automatic_extent_follows_the_samples_on_a_stable_lattice():
    grid = MapGrid(MapGridConfig(resolution=2.0, margin=5.0))
    assert grid.cells() is None
    grid.cover(np.array([[0.3, 0.3], [10.0, 4.0]]))
    cells = grid.cells()
    assert cells.origin_x == -6.0 and cells.origin_y == -6.0   # floor(-4.7 / 2) * 2
    assert cells.xy[:, 0].max() + 1.0 >= 15.0 and cells.xy[:, 1].max() + 1.0 >= 9.0
    grid.cover(np.array([[1.0, 1.0]]))                        # inside: unchanged
    assert grid.cells() is cells
    grid.cover(np.array([[-20.0, 1.0]]))
    grown = grid.cells()
    assert grown.origin_x == -26.0 and grown.origin_y == cells.origin_y
    # The old cell centres are still cell centres.
    assert np.isin(cells.xy[:, 0], grown.xy[:, 0]).all()


def test_large_area_is_coarsened_to_the_cell_budget():
    grid = MapGrid(MapGridConfig(extent=(0.0, 1000.0, 0.0, 1000.0), resolution=1.0,
                                 max_cells=10_000))
    cells = grid.cells()
    assert cells.shape[0] * cells.shape[1] <= 10_000
    assert cells.resolution == 10.0


@pytest.mark.parametrize('kwargs', [dict(extent=(1.0, 0.0, 0.0, 1.0)),
                                    dict(resolution=0.0), dict(margin=-1.0),
                                    dict(max_cells=0),
                                    dict(extent=(0.0, float('nan'), 0.0, 1.0))])
def test_bad_grid_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        MapGridConfig(**kwargs)
