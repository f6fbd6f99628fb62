"""`asv anomaly fit|score` on CSV logs and `asv train anomaly` on bags: they run end to end,
find a planted fault, and refuse bad input with one-line errors (exit 2)."""
import csv
import json

import numpy as np
import pytest

from asv_autonomy.anomaly.channels import BOAT_CHANNELS
from asv_autonomy.anomaly.detector import AnomalyDetector
from asv_autonomy.cli.main import main


def write_log(path, rows, separator=',', broken=None, extra=True):
    """Channels a, b (= a 1 s later) and c (noise) at 10 Hz; ``broken`` (start, stop) rows
    invert b (the coupling breaks) and are labelled in an ``anomaly`` column."""
    rng = np.random.default_rng(len(rows) if not isinstance(rows, int) else rows)
    t = np.arange(rows) * 0.1
    a = np.sin(t / 3) + 0.05 * rng.standard_normal(rows)
    b = np.roll(a, 10) + 0.05 * rng.standard_normal(rows)
    c = 0.1 * rng.standard_normal(rows)
    label = np.zeros(rows, int)
    if broken:
        b[broken[0]:broken[1]] *= -1
        label[broken[0]:broken[1]] = 1
    header = ['time', 'a', 'b', 'c'] + (['note'] if extra else []) + \
        (['anomaly'] if broken else [])
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle, delimiter=separator)
        writer.writerow(header)
        for i in range(rows):
            row = [f'{t[i]:.1f}', f'{a[i]:.4f}', f'{b[i]:.4f}', f'{c[i]:.4f}']
            row += ['text'] if extra else []
            row += [label[i]] if broken else []
            writer.writerow(row)
    return path


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp('anomaly_cli')
    train = write_log(folder / 'train.csv', 4000)
    model = folder / 'model.pt'
    assert main(['anomaly', 'fit', '--csv', str(train), '--epochs', '2', '--threads', '1',
                 '--out', str(model)]) == 0
    return folder, model


def test_fit_then_score_finds_the_broken_coupling(fitted, capsys):
    folder, model = fitted
    detector = AnomalyDetector.load(model)
    assert detector.channels == ('a', 'b', 'c')          # the text column was ignored
    test = write_log(folder / 'test.csv', 2500, separator=';', broken=(1500, 1700),
                     extra=False)
    scores, metrics = folder / 'scores.csv', folder / 'metrics.json'
    assert main(['anomaly', 'score', '--model', str(model), '--csv', str(test),
                 '--out', str(scores), '--metrics', str(metrics)]) == 0
    with open(scores) as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ['time', 'score', 'is_anomaly', 'channel']
    assert len(rows) == 2500
    flagged = np.array([r['is_anomaly'] == '1' for r in rows])
    assert flagged[1500:1700].any()                       # the fault is found ...
    assert not flagged[:1400].any()                       # ... and the normal part is quiet
    named = {r['channel'] for r in rows[1500:1700] if r['is_anomaly'] == '1'}
    assert named and named <= {'a', 'b', 'c'}
    result = json.loads(metrics.read_text())
    assert result['f1_event'] == 1.0 and result['false_alarms_per_hour'] == 0.0
    assert set(result) == {'auroc', 'f1_point', 'f1_event', 'detection_delay_s',
                           'false_alarms_per_hour', 'attribution_accuracy'}
    assert result['attribution_accuracy'] is None          # a CSV names no faulty channel


def test_score_refuses_a_tampered_model_and_foreign_logs(fitted, tmp_path, capsys):
    folder, model = fitted
    tampered = tmp_path / 'tampered.pt'
    tampered.write_bytes(model.read_bytes()[:-200])
    test = write_log(tmp_path / 'test.csv', 300)
    out = tmp_path / 'scores.csv'
    assert main(['anomaly', 'score', '--model', str(tampered), '--csv', str(test),
                 '--out', str(out)]) == 2
    assert 'anomaly checkpoint' in capsys.readouterr().err and not out.exists()
    foreign = tmp_path / 'foreign.csv'
    foreign.write_text('time,x\n0,1\n1,2\n2,3\n')
    assert main(['anomaly', 'score', '--model', str(model), '--csv', str(foreign),
                 '--out', str(out)]) == 2
    assert "none of the model's channels" in capsys.readouterr().err
    assert main(['anomaly', 'score', '--model', str(model), '--csv', str(test), '--out',
                 str(out), '--metrics', str(tmp_path / 'm.json')]) == 2
    assert 'needs an anomaly column' in capsys.readouterr().err


def test_fit_errors_are_one_line(tmp_path, capsys):
    assert main(['anomaly', 'fit', '--csv', str(tmp_path / 'none.csv'),
                 '--out', str(tmp_path / 'm.pt')]) == 2
    assert 'no such file' in capsys.readouterr().err
    train = write_log(tmp_path / 'train.csv', 200)
    assert main(['anomaly', 'fit', '--csv', str(train), '--window', '1',
                 '--out', str(tmp_path / 'm.pt')]) == 2
    assert 'bad detector setting' in capsys.readouterr().err


def test_train_anomaly_on_simulated_bags(tmp_path, capsys):
    data = tmp_path / 'normal'
    assert main(['sim', 'faults', '--seeds', '7..8', '--duration', '90', '--faults-per-run',
                 '0', '--out', str(data)]) == 0
    model = tmp_path / 'boat.pt'
    assert main(['train', 'anomaly', '--bags', str(data), '--epochs', '1', '--threads', '1',
                 '--out', str(model)]) == 0
    err = capsys.readouterr().err
    assert '2 bag(s)' in err and 'threshold' in err and 'wrote' in err
    detector = AnomalyDetector.load(model)
    assert detector.channels == BOAT_CHANNELS and detector.config.rate_hz == 10.0
    assert main(['train', 'anomaly', '--bags', str(tmp_path / 'nothing'),
                 '--out', str(model)]) == 2
