"""Mapping benchmark core: loaders, orders, metrics, model adapters."""
import lzma
import math

import numpy as np
import pytest

from asv_autonomy.mapping import benchmark as bench


pytestmark = pytest.mark.usefixtures('one_torch_thread')


# ---------------------------------------------------------------------------------- loaders

def test_npy_grid_uses_cell_size_and_ignores_nan(tmp_path):
    grid = np.arange(12, dtype=float).reshape(3, 4)
    grid[1, 2] = np.nan
    np.save(tmp_path / 'g.npy', grid)
    data = bench.load_field(tmp_path / 'g.npy', cell_size=2.5)
    assert len(data) == 11 and data.grid.shape == (3, 4)
    assert not np.isin(6.0, data.values)                          # the NaN cell (1, 2)
    k = list(data.values).index(7.0)                              # cell row 1, col 3
    np.testing.assert_allclose(data.xy[k], [3 * 2.5, 1 * 2.5])
    np.testing.assert_array_equal(grid.ravel()[data.grid.cells], data.values)


def test_npz_with_longitude_latitude_is_projected_to_metres(tmp_path):
    lon = np.linspace(234.0, 236.0, 5)        # 0..360 convention, like topobathy.npz
    lat = np.linspace(48.0, 49.0, 3)
    topo = np.arange(15, dtype=np.float32).reshape(3, 5)
    np.savez(tmp_path / 't.npz', topo=topo, longitude=lon, latitude=lat)
    data = bench.load_field(tmp_path / 't.npz')
    assert len(data) == 15
    xy = data.grid.xy
    # About the centre of the data; one degree of latitude is ~111 km, of longitude at
    # 48.5 deg ~74 km.
    np.testing.assert_allclose(xy[1, 2], [0.0, 0.0], atol=1.0)
    assert xy[2, 2, 1] - xy[0, 2, 1] == pytest.approx(111.2e3, rel=0.01)
    assert xy[1, 4, 0] - xy[1, 0, 0] == pytest.approx(2 * 73.8e3, rel=0.01)


def test_npz_with_several_grids_needs_a_key(tmp_path):
    np.savez(tmp_path / 'two.npz', depth=np.ones((3, 3)), temperature=np.zeros((3, 3)))
    with pytest.raises(bench.FieldFileError, match=r'two\.npz.*depth \(3, 3\).*temperature'):
        bench.load_field(tmp_path / 'two.npz')
    data = bench.load_field(tmp_path / 'two.npz', key='temperature')
    assert (data.values == 0).all()
    with pytest.raises(bench.FieldFileError, match="no 2-D array 'salinity'"):
        bench.load_field(tmp_path / 'two.npz', key='salinity')


def test_csv_comma_and_semicolon_with_decimal_comma(tmp_path):
    (tmp_path / 'a.csv').write_text('x,y,depth\n0,0,1.5\n10,0,2.5\n0,10,nan\n10,10,3.5\n')
    (tmp_path / 'b.csv').write_text('X;Y;depth\n0;0;1,5\n10;0;2,5\n10;10;3,5\n')
    a = bench.load_field(tmp_path / 'a.csv')
    b = bench.load_field(tmp_path / 'b.csv')
    assert a.grid is None
    np.testing.assert_array_equal(a.values, [1.5, 2.5, 3.5])     # the NaN row dropped
    np.testing.assert_array_equal(a.xy, [[0, 0], [10, 0], [10, 10]])
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.xy, b.xy)


def test_csv_xz_geographic_0_360_equals_minus_180_180(tmp_path):
    rows = [(245.0, 27.0, -600.0), (245.1, 27.05, -650.0), (245.2, 27.1, -700.0)]
    header = 'longitude,latitude,bathymetry_m\n'
    with lzma.open(tmp_path / 'east.csv.xz', 'wt') as stream:
        stream.write(header + ''.join(f'{a},{b},{c}\n' for a, b, c in rows))
    (tmp_path / 'west.csv').write_text(header + ''.join(f'{a - 360},{b},{c}\n'
                                                        for a, b, c in rows))
    east = bench.load_field(tmp_path / 'east.csv.xz')
    west = bench.load_field(tmp_path / 'west.csv')
    np.testing.assert_allclose(east.xy, west.xy, atol=1e-6)
    np.testing.assert_allclose(east.xy[1], [0.0, 0.0], atol=5.0)   # the centre sample
    step = np.hypot(*(east.xy[2] - east.xy[0]))
    assert step == pytest.approx(math.hypot(0.2 * 111.3e3 * math.cos(math.radians(27.05)),
                                            0.1 * 110.9e3), rel=0.01)


@pytest.mark.parametrize('name, content, message', [
    ('cube.npy', np.zeros((2, 2, 2)), r'expected a 2-D array, got shape \(2, 2, 2\)'),
    ('noxy.csv', 'a,b,c\n1,2,3\n', 'needs columns x, y or longitude, latitude'),
    ('many.csv', 'x,y,depth,temp\n1,2,3,4\n', r"one value column.*\['depth', 'temp'\]"),
    ('text.csv', 'x,y,depth\n1,2,3\n1,oops,3\n', 'could not convert'),
    ('empty.csv', '', 'empty file'),
    ('short.csv', 'x,y,depth\n1,2,3\n', 'at least 3 rows'),
    ('broken.npz', b'not a zip file', 'broken.npz'),
    ('broken.csv.xz', b'not xz', 'broken.csv.xz'),
    ('field.txt', 'x,y,depth\n', 'unsupported file type'),
])
def test_bad_files_are_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(bench.FieldFileError, match=message) as error:
        bench.load_field(path)
    assert str(path) in str(error.value) and '\n' not in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(bench.FieldFileError, match='no such file'):
        bench.load_field(tmp_path / 'nothing.npy')


# ----------------------------------------------------------------------------------- orders

def _scattered(n):
    rng = np.random.default_rng(1)
    return bench.Dataset('s', rng.uniform(0, 100, (n, 2)), rng.normal(size=n))


def test_track_order_keeps_file_order():
    data = _scattered(500)
    train, heldout = bench.split(data, 'track', 120, seed=3, max_eval=10_000)
    np.testing.assert_array_equal(train, np.arange(120))
    np.testing.assert_array_equal(heldout, np.arange(120, 500))


def test_random_order_is_seeded_disjoint_and_capped():
    data = _scattered(500)
    train, heldout = bench.split(data, 'random', 100, seed=0, max_eval=50)
    again, _ = bench.split(data, 'random', 100, seed=0, max_eval=50)
    other, _ = bench.split(data, 'random', 100, seed=1, max_eval=50)
    np.testing.assert_array_equal(train, again)
    assert set(train) != set(other)
    assert len(set(train)) == 100 and len(heldout) == 50
    assert not set(train) & set(heldout)
    with pytest.raises(ValueError, match='held out'):
        bench.split(data, 'random', 500, seed=0, max_eval=50)


def test_lawnmower_covers_the_grid():
    valid = np.ones((40, 60), bool)
    valid[10:14, 20:30] = False                    # an island
    path = bench.lawnmower_cells(valid, 150)
    assert len(path) == 150 and len(set(path)) == 150
    rows, cols = np.divmod(path, 60)
    assert valid[rows, cols].all()
    # Every cell of the grid is near the survey: within about one lane spacing.
    spacing = math.sqrt(40 * 60 / 150)
    cell_r, cell_c = np.mgrid[0:40, 0:60]
    gap = np.hypot(cell_r.ravel()[:, None] - rows, cell_c.ravel()[:, None] - cols).min(axis=1)
    assert gap.max() <= 1.2 * spacing
    # A lawnmower: rows never go back, and successive lanes run in opposite directions.
    assert (np.diff(rows) >= 0).all()
    lanes = [cols[rows == r] for r in np.unique(rows)]
    directions = [np.sign(lane[-1] - lane[0]) for lane in lanes if len(lane) > 1]
    assert all(a == -b for a, b in zip(directions, directions[1:]))


def test_track_order_on_a_grid_follows_the_lawnmower(tmp_path):
    grid = np.random.default_rng(0).normal(size=(30, 30))
    grid[0, :] = np.nan
    np.save(tmp_path / 'g.npy', grid)
    data = bench.load_field(tmp_path / 'g.npy')
    train, heldout = bench.split(data, 'track', 50, seed=0, max_eval=10_000)
    valid = np.isfinite(grid)
    np.testing.assert_array_equal(data.grid.cells[train], bench.lawnmower_cells(valid, 50))
    assert len(heldout) == len(data) - 50 and not set(train) & set(heldout)


# ---------------------------------------------------------------------------------- metrics

def test_metrics_of_a_calibrated_gaussian():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=200_000)
    std = rng.uniform(0.5, 2.0, size=mean.shape)
    y = mean + std * rng.normal(size=mean.shape)
    m = bench.gaussian_metrics(y, mean, std)
    assert m['coverage95'] == pytest.approx(0.95, abs=0.003)
    # E[NLPD] = E[0.5 log(2 pi std^2)] + 1/2
    expected = np.mean(0.5 * np.log(2 * np.pi * std ** 2)) + 0.5
    assert m['nlpd'] == pytest.approx(expected, abs=0.01)
    assert m['rmse'] == pytest.approx(np.sqrt(np.mean(std ** 2)), rel=0.01)
    # Overconfident predictions cover less and score a worse NLPD.
    narrow = bench.gaussian_metrics(y, mean, std / 2)
    assert narrow['coverage95'] == pytest.approx(0.68, abs=0.01)
    assert narrow['nlpd'] > m['nlpd'] + 0.5


def test_metrics_exact_values():
    m = bench.gaussian_metrics(np.array([1.0, -1.0, 3.0]), np.zeros(3), np.ones(3))
    assert m['rmse'] == pytest.approx(math.sqrt(11 / 3))
    assert m['mae'] == pytest.approx(5 / 3)
    assert m['nlpd'] == pytest.approx(0.5 * math.log(2 * math.pi) + 11 / 6)
    assert m['coverage95'] == pytest.approx(2 / 3)


def test_standardisation_is_isotropic_and_from_training_data():
    xy = np.array([[100.0, 50.0], [300.0, 60.0], [200.0, 70.0]])
    s = bench.Standardisation.fit(xy, np.array([1.0, 2.0, 3.0]))
    x = s.x(xy)
    np.testing.assert_allclose(x[:, 0], [-1, 1, 0])
    np.testing.assert_allclose(x[:, 1], [-0.1, 0, 0.1])
    mean, std = s.back(np.zeros(1), np.ones(1))
    assert mean[0] == pytest.approx(2.0) and std[0] == pytest.approx(np.std([1, 2, 3]))


def test_peak_memory_sees_an_allocation():
    with bench.PeakMemory() as memory:
        block = np.ones(40 * 2 ** 20 // 8)      # 40 MiB, touched
        del block
    assert 35 < memory.mb < 200


# ----------------------------------------------------------------------------------- models

def _smooth_field(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    return x, np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]) + 0.05 * rng.normal(size=n)


def test_exact_rbf_closed_form_matches_gpytorch():
    x, y = _smooth_field(60)
    model = bench.make_model('exact-rbf', bench.BenchSettings(iters=10), seed=0, n=60)
    assert model.fit(x, y) == []
    query = np.random.default_rng(5).uniform(-1.5, 1.5, (25, 2))
    mean, std = model.predict(query)
    import torch
    with torch.no_grad():
        reference = model.likelihood(model.model(torch.as_tensor(query)))
    np.testing.assert_allclose(mean, reference.mean.numpy(), atol=1e-8)
    np.testing.assert_allclose(std, reference.variance.sqrt().numpy(), atol=1e-8)


def test_thread_setting_reaches_the_streaming_mappers():
    for threads, expected in ((0, 1), (2, 2)):
        settings = bench.BenchSettings(threads=threads)
        for name in ('asv', 'asv-stationary'):
            model = bench.make_model(name, settings, seed=0, n=10)
            assert model.mapper.config.num_threads == expected
    with pytest.raises(ValueError, match='threads must be >= 0'):
        bench.BenchSettings(threads=-1)


def test_background_adaptation_reaches_the_streaming_mappers_and_lands_before_scoring():
    x, y = _smooth_field(300)
    for background in (False, True):
        settings = bench.BenchSettings(adapt_in_background=background, inducing=32)
        model = bench.make_model('asv', settings, seed=0, n=len(y))
        assert model.mapper.config.adapt_in_background == background
        model.fit(x, y)
        model.predict(x[:5])
        assert model.mapper._job is None   # a fit in flight was applied before scoring


def test_sgpr_and_pypolo_fit_a_smooth_field():
    x, y = _smooth_field(120)
    query, truth = _smooth_field(200, seed=1)
    settings = bench.BenchSettings(iters=10, inducing=40)
    for name in ('sgpr', 'pypolo-ak'):
        model = bench.make_model(name, settings, seed=0, n=120)
        model.fit(x, y)
        mean, std = model.predict(query)
        assert mean.shape == std.shape == (200,)
        assert (std > 0).all()
        assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.5 * truth.std(), name


def test_skipped_and_failing_models_are_nan_results_with_a_note(monkeypatch):
    data = _scattered(60)
    train, heldout = bench.split(data, 'random', 40, seed=0, max_eval=100)
    result, _ = bench.run_one(data, 'exact-rbf', 40, 0, train, heldout,
                              bench.BenchSettings(exact_limit=30))
    assert set(result) == set(bench.RESULT_KEYS) | {'note'}
    assert 'above 30 samples' in result['note'] and math.isnan(result['rmse'])

    def broken_fit(self, x, y):
        raise RuntimeError('Cholesky failed')
    monkeypatch.setattr(bench.ExactRBF, 'fit', broken_fit)
    result, snapshot = bench.run_one(data, 'exact-rbf', 40, 0, train, heldout,
                                     bench.BenchSettings(), map_points=data.xy)
    assert result['note'] == 'failed: RuntimeError: Cholesky failed'
    assert math.isnan(result['nlpd']) and snapshot is None


def test_run_one_scores_a_batch_model():
    x, y = _smooth_field(400)
    data = bench.Dataset('smooth', 50.0 * x, 10.0 + 3.0 * y)
    train, heldout = bench.split(data, 'random', 150, seed=0, max_eval=200)
    result, snapshot = bench.run_one(data, 'exact-rbf', 150, 0, train, heldout,
                                     bench.BenchSettings(iters=30), map_points=data.xy[:7])
    assert list(result) == list(bench.RESULT_KEYS)
    assert result['rmse'] < 0.3 * data.values.std()
    assert 0.8 <= result['coverage95'] <= 1.0
    assert math.isnan(result['update_ms_p50']) and math.isnan(result['update_ms_p95'])
    assert result['fit_s'] > 0 and result['predict_ms_10k'] > 0
    assert snapshot.mean.shape == (7,) and snapshot.train_xy.shape == (150, 2)
