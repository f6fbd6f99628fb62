"""`asv bench mapping` end to end on small fields (in-process: no ROS involved)."""
import json
import math

import numpy as np
import pytest

from asv_autonomy.cli.main import main
from asv_autonomy.mapping.benchmark import RESULT_KEYS


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture
def field(tmp_path):
    """A 30 x 40 grid of a smooth field with a NaN patch, 10 m cells."""
    row, col = np.mgrid[0:30, 0:40] / 10.0
    grid = 5.0 + np.sin(row) * np.cos(1.5 * col)
    grid[:3, :4] = np.nan
    path = tmp_path / 'field.npy'
    np.save(path, grid)
    return path


def _run(capsys, *argv):
    code = main(['bench', 'mapping', *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_small_benchmark_writes_json_and_plot(field, tmp_path, capsys):
    out_json, out_png = tmp_path / 'out' / 'r.json', tmp_path / 'out' / 'r.png'
    code, out, err = _run(capsys, '--field', field, '--cell-size', 10, '--n', '60,150',
                          '--order', 'track', '--models', 'asv,exact-rbf', '--seeds', 2,
                          '--iters', 20, '--inducing', 32, '--json', out_json,
                          '--plot', out_png)
    assert code == 0, err
    report = json.loads(out_json.read_text())
    assert report['dataset'] == 'field.npy'
    results = report['results']
    assert [(r['model'], r['n'], r['seed']) for r in results] == [
        (m, n, s) for s in (0, 1) for n in (60, 150) for m in ('asv', 'exact-rbf')]
    for r in results:
        assert list(r) == list(RESULT_KEYS), r
        assert r['rmse'] < 0.5 and 0.5 <= r['coverage95'] <= 1.0, r
        assert r['fit_s'] > 0 and r['predict_ms_10k'] > 0
        streaming = r['model'] == 'asv'
        assert math.isfinite(r['update_ms_p95']) == streaming
        assert math.isfinite(r['update_ms_p50']) == streaming
    assert out_png.stat().st_size > 20_000
    assert 'exact-rbf' in out and 'rmse' in out          # the summary table


def test_scattered_csv_and_skipped_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (300, 2))
    depth = 20 + 5 * np.sin(xy[:, 0] / 100)
    lines = ''.join(f'{x:.2f};{y:.2f};{d:.3f}\n' for (x, y), d in zip(xy, depth))
    (tmp_path / 's.csv').write_text('x;y;depth\n' + lines.replace('.', ','))
    out_json = tmp_path / 's.json'
    code, _, err = _run(capsys, '--field', tmp_path / 's.csv', '--n', '100', '--models',
                        'sgpr', '--iters', 10, '--inducing', 20, '--json', out_json)
    assert code == 0, err
    (result,) = json.loads(out_json.read_text())['results']
    assert result['rmse'] < 2.0 and math.isnan(result['update_ms_p95'])


@pytest.mark.parametrize('argv, message', [
    (['--n', '10,abc'], 'comma-separated whole numbers'),
    (['--n', '2'], 'sizes >= 3'),
    (['--n', '5000'], 'leaves no held-out sample'),
    (['--models', 'exact-rbf,gpflow'], 'unknown model(s) gpflow'),
    (['--seeds', '0'], '--seeds must be >= 1'),
    (['--inducing', '0'], 'inducing must be >= 1'),
])
def test_bad_options_are_one_line_errors(field, tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, '--field', field, '--json', tmp_path / 'x.json', *argv)
    assert code == 2
    assert err.startswith('asv: error: ') and message in err and err.count('\n') == 1
    assert not (tmp_path / 'x.json').exists()


def test_unwritable_outputs_fail_before_benchmarking(field, tmp_path, capsys):
    code, _, err = _run(capsys, '--field', field, '--n', 100, '--json', tmp_path)
    assert code == 2 and f'cannot write {tmp_path}' in err
    code, _, err = _run(capsys, '--field', field, '--n', 100, '--json', tmp_path / 'r.json',
                        '--plot', tmp_path / 'r.xyz')
    assert code == 2 and 'unknown image type' in err


def test_bad_field_file_names_file_and_problem(tmp_path, capsys):
    bad = tmp_path / 'grids.npz'
    np.savez(bad, a=np.ones((4, 4)), b=np.ones((4, 4)))
    code, _, err = _run(capsys, '--field', bad, '--json', tmp_path / 'x.json')
    assert code == 2
    assert f'asv: error: {bad}: expected exactly one 2-D array' in err
    assert 'a (4, 4), b (4, 4)' in err


def test_real_topobathy(shared_data, tmp_path, capsys):
    out_json = tmp_path / 'topo.json'
    code, _, err = _run(capsys, '--field', shared_data / 'bathymetry' / 'topobathy.npz',
                        '--n', 100, '--models', 'asv,exact-rbf', '--iters', 30,
                        '--json', out_json)
    assert code == 0, err
    report = json.loads(out_json.read_text())
    assert report['dataset'] == 'topobathy.npz'
    topo = np.load(shared_data / 'bathymetry' / 'topobathy.npz')['topo']
    for r in report['results']:
        # 100 of 10,920 cells of a 3.6 km relief: far better than predicting the mean.
        assert r['rmse'] < 0.8 * topo.std(), r
        assert 0.7 <= r['coverage95'] <= 1.0, r


# --- asv bench plume -----------------------------------------------------------------------

def _plume(capsys, *argv):
    code = main(['bench', 'plume', *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize('argv, message', [
    (['--every', '0'], '--every must be > 0'),
    (['--duration', '60', '--every', '90'], 'must not exceed duration'),
    (['--duration', 'nan'], 'duration must be > 0'),
    (['--seed', '-2'], 'seed must be an integer >= 0'),
    (['--params', '/nonexistent/autonomy.yaml'], 'params file /nonexistent/autonomy.yaml'),
    (['--plot', 'x.xyz'], 'unknown image type'),
])
def test_plume_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code, _, err = _plume(capsys, '--json', tmp_path / 'x.json', *argv)
    assert code == 2
    assert err.startswith('asv: error: ') and message in err and err.count('\n') == 1, err
    assert not (tmp_path / 'x.json').exists()


def test_plume_bad_mapping_parameters_name_file_and_field(tmp_path, capsys):
    params = tmp_path / 'autonomy.yaml'
    params.write_text('/**/mapping:\n  ros__parameters:\n    temperature:\n'
                      '      temporal_timescale: -5.0\n')
    code, _, err = _plume(capsys, '--params', params, '--json', tmp_path / 'x.json')
    assert code == 2
    assert f'{params}: temperature: temporal_timescale must be finite and >= 0' in err


@pytest.mark.slow
def test_tiny_plume_run_writes_strict_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / 'out' / 'plume.json', tmp_path / 'out' / 'plume.png'
    code, out, err = _plume(capsys, '--duration', 60, '--every', 30, '--seed', 1,
                            '--json', out_json, '--plot', out_png)
    assert code == 0, err
    report = json.loads(out_json.read_text(), parse_constant=pytest.fail)
    assert report['settings']['benchmark']['seed'] == 1
    assert report['settings']['mapper']['temporal_timescale'] == 600.0   # config/autonomy.yaml
    assert report['settings']['mapper']['static_background'] is True     # the default
    assert [r['t_s'] for r in report['rows']] == [30.0, 60.0]
    assert all(r['rmse_static'] > 0 and r['rmse_fading'] > 0 for r in report['rows'])
    # All within the 120 s warm-up: nothing to summarise, null rather than NaN.
    assert report['summary']['mean_rmse_static'] is None
    assert err.count('[asv bench plume] t ') == 2        # a progress line per evaluation
    assert out_png.stat().st_size > 20_000
    assert 'spatio-temporal' in out and 'fading' in out
