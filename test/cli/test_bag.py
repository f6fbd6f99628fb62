"""`asv bag info`, and the one-line errors of `asv bag record|play|info` (no ROS started)."""
import pytest
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)

from asv_autonomy.bagio import serialize, typestore, write_bag
from asv_autonomy.cli.main import main

T0 = 1_700_000_000_000_000_000  # Nov 14 2023 22:13:20 UTC


@pytest.fixture
def bag(tmp_path):
    float64 = typestore().types['std_msgs/msg/Float64']
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                  QosDurability.TRANSIENT_LOCAL, QosTime(0, 0), QosTime(0, 0),
                  QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
    messages = [('/thrust', 'std_msgs/msg/Float64', T0 + i * 250_000_000,
                 serialize(float64(data=float(i)), 'std_msgs/msg/Float64')) for i in range(5)]
    messages.append(('/safety/estop', 'std_msgs/msg/Bool', T0 + 1,
                     serialize(typestore().types['std_msgs/msg/Bool'](data=False),
                               'std_msgs/msg/Bool')))
    path = tmp_path / 'bag'
    write_bag(path, messages, offered_qos={'/safety/estop': [latched]})
    return path


def error_of(argv, capsys) -> str:
    """The single line `asv` prints for a user error (exit status 2)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('asv: error: '), captured.err
    assert captured.out == ''
    return lines[0]


def test_info(bag, capsys):
    assert main(['bag', 'info', str(bag)]) == 0
    out = capsys.readouterr().out
    size = (bag / 'bag.mcap').stat().st_size
    assert out.splitlines() == [
        'Files:             bag.mcap',
        f'Bag size:          {size / 1024:.1f} KiB',
        'Storage id:        mcap',
        'ROS Distro:        rosbags',
        'Duration:          1.000000000s',
        'Start:             Nov 14 2023 22:13:20.000000000 UTC (1700000000.000000000)',
        'End:               Nov 14 2023 22:13:21.000000000 UTC (1700000001.000000000)',
        'Messages:          6',
        'Topic information: Topic: /safety/estop | Type: std_msgs/msg/Bool | Count: 1 | '
        'Serialization Format: cdr',
        '                   Topic: /thrust | Type: std_msgs/msg/Float64 | Count: 5 | '
        'Serialization Format: cdr',
    ]


def test_info_of_empty_bag(tmp_path, capsys):
    write_bag(tmp_path / 'empty', [])
    assert main(['bag', 'info', str(tmp_path / 'empty')]) == 0
    out = capsys.readouterr().out
    assert 'Messages:          0' in out and 'Duration:          0.000000000s' in out
    assert 'Start:' not in out


@pytest.mark.parametrize('verb', ['info', 'play'])
def test_missing_bag(verb, tmp_path, capsys):
    missing = tmp_path / 'missing'
    assert f'{missing}: no such bag' in error_of(['bag', verb, str(missing)], capsys)


@pytest.mark.parametrize('verb', ['info', 'play'])
def test_directory_that_is_not_a_bag(verb, tmp_path, capsys):
    (tmp_path / 'readme.txt').write_text('not a bag')
    line = error_of(['bag', verb, str(tmp_path)], capsys)
    assert f'{tmp_path}: not a rosbag2 bag (the directory has no metadata.yaml)' in line


@pytest.mark.parametrize('verb', ['info', 'play'])
def test_corrupt_metadata(verb, bag, capsys):
    (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {version: 9, files: [\n')
    assert f'{bag}: corrupt or truncated bag: ' in error_of(['bag', verb, str(bag)], capsys)


@pytest.mark.parametrize('verb', ['info', 'play'])
def test_truncated_mcap(verb, bag, capsys):
    mcap = bag / 'bag.mcap'
    mcap.write_bytes(mcap.read_bytes()[:300])
    line = error_of(['bag', verb, str(bag)], capsys)
    assert f'{bag}: corrupt or truncated bag: ' in line
    assert f'{mcap}: corrupt or truncated bag: ' in error_of(['bag', verb, str(mcap)], capsys)


@pytest.mark.parametrize('args, message', [
    (['--rate', '0'], 'rate must be > 0'),
    (['--rate', '-2'], 'rate must be > 0'),
    (['--remap', 'thrust'], "bad remap 'thrust': expected FROM:=TO"),
    (['--remap', 'thrust:=bad name'], "bad remap 'thrust:=bad name': 'bad name' is not a valid"),
    (['--remap', '/nothing:=/x'], 'remap source /nothing is not a topic of bag'),
    (['--topics', 'thrust', '/nothing'], 'topic /nothing is not in bag'),
    (['--start', '2'], 'start offset 2.0 s is past the end of the bag (1.000 s long)'),
    (['--start', '-1'], 'start offset must be >= 0 s'),
    (['--clock-rate', '-5'], 'clock rate must be >= 0 Hz'),
])
def test_bad_play_options(args, message, bag, capsys):
    assert message in error_of(['bag', 'play', str(bag)] + args, capsys)


def test_record_refuses_existing_output(bag, capsys):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in bag.iterdir())
    line = error_of(['bag', 'record', '-a', '-o', str(bag)], capsys)
    assert f'output {bag} exists already' in line
    assert sorted((p.name, p.stat().st_mtime_ns) for p in bag.iterdir()) == before


@pytest.mark.parametrize('args, message', [
    ([], 'give either topics to record or -a/--all'),
    (['-a', 'thrust'], 'give either topics to record or -a/--all'),
    (['-a', '--exclude', '(unclosed'], "bad --exclude regular expression '(unclosed'"),
    (['-a', '--max-duration', '-1'], 'max_duration must be >= 0 s'),
])
def test_bad_record_options(args, message, tmp_path, capsys):
    output = tmp_path / 'out'
    assert message in error_of(['bag', 'record', '-o', str(output)] + args, capsys)
    assert not output.exists()
