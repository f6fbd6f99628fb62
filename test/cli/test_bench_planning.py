"""`asv bench planning` in-process with the baseline (no ROS involved)."""
import json

import numpy as np
import pytest

from asv_autonomy.cli.main import main
from asv_autonomy.planning.benchmark import RESULT_KEYS


def _run(capsys, *argv):
    code = main(['bench', 'planning', *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_still_currents_file_runs_the_passage_with_json_and_plot(tmp_path, capsys):
    still = tmp_path / 'still.npz'
    np.savez(still, u=np.zeros((4, 4)), v=np.zeros((4, 4)))
    out_json, out_png = tmp_path / 'o' / 'r.json', tmp_path / 'o' / 'r.png'
    code, out, err = _run(capsys, '--scenarios', 'passage', '--planners', 'baseline',
                          '--seeds', 1, '--currents', still, '--json', out_json,
                          '--plot', out_png)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    (row,) = data['results']
    assert list(row) == list(RESULT_KEYS)
    assert (row['scenario'], row['planner'], row['seed']) == ('passage', 'baseline', 0)
    # In still water the straight line through the gap is easy: 830 m at ~1.2 m/s.
    assert row['success'] and row['collisions'] == 0
    assert 830 / 1.3 < row['time_s'] < 830 / 1.0
    assert data['compute'] == []                    # the baseline does not sample
    assert data['settings']['currents'] == str(still)
    assert out_png.stat().st_size > 20_000
    assert 'passage' in out and 'baseline' in out


@pytest.mark.parametrize('argv, message', [
    (['--planners', 'baseline,dwa'], 'unknown planner(s) dwa'),
    (['--scenarios', 'lagoon'], 'unknown scenario(s) lagoon'),
    (['--seeds', '0'], '--seeds must be >= 1'),
    (['--device', 'tpu'], '--device must be cpu or cuda'),
    (['--currents', 'missing.npz'], 'no such file'),
    (['--plot', 'x.unknown'], 'unknown image type'),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code, _, err = _run(capsys, '--planners', 'baseline', *argv, '--json', tmp_path / 'x.json')
    assert code == 2
    assert err.startswith('asv: error: ') and message in err and err.count('\n') == 1
    assert not (tmp_path / 'x.json').exists()


def test_bad_currents_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / 'bad.npz'
    np.savez(bad, u=np.zeros(4))
    code, _, err = _run(capsys, '--planners', 'baseline', '--currents', bad, '--json',
                        tmp_path / 'x.json')
    assert code == 2 and 'bad.npz' in err
