"""`asv bench anomaly`: bad arguments are one-line errors (exit 2) and nothing is written.
(The benchmark itself runs for minutes; its parts are tested in test/anomaly.)"""
from asv_autonomy.cli.main import main


def test_bad_arguments_are_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / 'anomaly.json'
    cases = [(['--methods', 'asv,magic'], 'unknown method'),
             (['--families', 'meteor'], 'unknown fault family'),
             (['--tests-per-family', '0'], '--tests-per-family'),
             (['--plot', str(tmp_path / 'x.jpg')], '.png'),
             (['--no-sim', '--no-real'], 'nothing to run'),
             (['--no-sim', '--nmea', str(tmp_path / 'absent')], 'no dataset left')]
    for argv, message in cases:
        assert main(['bench', 'anomaly', '--json', str(out), *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
        assert not out.exists()
