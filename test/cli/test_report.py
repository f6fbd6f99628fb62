"""`asv report` on small bags written here: the anomaly section of summary.json (the
anomaly node's `anomaly: overall` statuses against the simulator's `sim/faults`) and the
anomaly panel of report.png."""
import json
import math

import pytest

from asv_autonomy import bagio
from asv_autonomy.cli.report import load_run, summarize, write_report

T = bagio.typestore().types
START = 1000.0          # [s] sim time of the first /clock
SECONDS = 90.0
# Injected faults (mission seconds): one detected 1.5 s late on its channel, one missed.
THRUSTER = (20.0, 30.0)
GPS = (50.0, 60.0)
# Alarm runs (mission seconds, group): the thruster fault, then a false alarm.
ALARMS = [(21.5, 25.0, 'thruster_left'), (25.0, 26.0, 'hull'), (70.0, 71.0, 'sonar')]


def _time(t):
    sec = int(math.floor(t))
    return T['builtin_interfaces/msg/Time'](sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _status(name, level, values=(), hardware_id=''):
    return T['diagnostic_msgs/msg/DiagnosticStatus'](
        level=level, name=name, message='', hardware_id=hardware_id,
        values=[T['diagnostic_msgs/msg/KeyValue'](key=k, value=str(v)) for k, v in values])


def _array(t, statuses):
    return T['diagnostic_msgs/msg/DiagnosticArray'](
        header=T['std_msgs/msg/Header'](stamp=_time(t), frame_id=''), status=statuses)


def _alarm_at(s):
    return next((g for a, b, g in ALARMS if a - 1e-9 <= s < b - 1e-9), None)


def write_mission(path, namespace='/asv1', anomaly_node=True):
    """A 90 s mission: /clock at 10 Hz, the sim status, the simulator's fault reports (1 Hz
    while active, an empty array at the next tick after the end; onsets in seconds since
    the simulation's start, START) and, with `anomaly_node`, the anomaly node's statuses
    at 10 Hz."""
    out = []

    def put(topic, msg, t):
        out.append((topic, msg.__msgtype__, int(round(t * 1e9)),
                    bagio.serialize(msg, msg.__msgtype__)))

    diagnostics, faults = f'{namespace}/diagnostics', f'{namespace}/sim/faults'
    for k in range(int(SECONDS * 10) + 1):
        s = 0.1 * k
        t = START + s
        put('/clock', T['rosgraph_msgs/msg/Clock'](clock=_time(t)), t)
        if anomaly_node:
            group = _alarm_at(s)
            score = 9.0 if group else 1.0
            put(diagnostics, _array(t, [
                _status('anomaly: gps', 0, [('score', 0.5), ('threshold', 4.0)]),
                _status('anomaly: overall', 1 if group else 0,
                        [('score', score), ('threshold', 4.0), ('channel', group or ''),
                         ('group', group or ''), ('fault', '')])]), t)
        if k % 10 == 0:
            put(diagnostics, _array(t, [_status('sim', 0, [('contacts', 0),
                                                           ('energy_J', 1234.5)])]), t)
            if anomaly_node:
                put(diagnostics, _array(t, [_status(f'{namespace}/anomaly', 0,
                                                    [('windows', k), ('dropped_total', 0)])]), t)
            active = []
            for (onset, end), kind, channel in ((THRUSTER, 'thruster_degradation',
                                                 'thruster_left'), (GPS, 'gps_jump', 'gps')):
                if onset <= s < end:
                    active.append(_status(f'sim/faults/{channel}', 1, [
                        ('fault', kind), ('onset', onset),   # simulation seconds
                        ('duration', end - onset)], hardware_id=channel))
            if active or s in (THRUSTER[1], GPS[1]):
                put(faults, _array(t, active), t)
    bagio.write_bag(path, out)


def test_summary_reports_detected_missed_and_false_alarms(tmp_path):
    write_mission(tmp_path / 'bag')
    run = load_run(tmp_path / 'bag', '/asv1')
    assert len(run.anomaly) == int(SECONDS * 10) + 1        # the overall statuses only
    anomalies = summarize(run)['anomalies']
    assert anomalies['detector_running'] is True
    thruster, gps = anomalies['faults']
    assert thruster == {'type': 'thruster_degradation', 'channel': 'thruster_left',
                        'onset_s': 20.0, 'end_s': 30.0, 'detected': True,
                        'detection_delay_s': pytest.approx(1.5, abs=1e-3),
                        'attributed_channel': 'thruster_left', 'attribution_correct': True}
    assert gps == {'type': 'gps_jump', 'channel': 'gps', 'onset_s': 50.0, 'end_s': 60.0,
                   'detected': False, 'detection_delay_s': None,
                   'attributed_channel': None, 'attribution_correct': None}
    assert anomalies['false_alarms'] == 1
    normal_s = SECONDS + 0.1 - (THRUSTER[1] - THRUSTER[0]) - (GPS[1] - GPS[0])
    assert anomalies['false_alarms_per_hour'] == pytest.approx(3600.0 / normal_s, rel=1e-2)


def test_report_files_with_the_anomaly_panel(tmp_path):
    write_mission(tmp_path / 'bag')
    summary = write_report(tmp_path, namespace='/asv1')
    on_disk = json.loads((tmp_path / 'summary.json').read_text())
    assert on_disk['anomalies'] == json.loads(json.dumps(summary['anomalies']))
    assert on_disk['energy_J'] == 1234.5 and on_disk['dropped_inputs'] == {'asv1/anomaly': 0}
    with_panel = (tmp_path / 'report.png').stat().st_size

    plain = tmp_path / 'plain'
    plain.mkdir()
    write_mission(plain / 'bag', anomaly_node=False)
    summary = write_report(plain, namespace='/asv1')
    assert summary['anomalies'] is None          # no anomaly node ran
    assert summary['collisions'] == 0
    # The panel adds a plot; without it the layout is the previous one.
    from PIL import Image
    tall, short = Image.open(tmp_path / 'report.png'), Image.open(plain / 'report.png')
    assert tall.size[0] == short.size[0] and tall.size[1] > short.size[1]
    assert with_panel > 10_000


def test_anomaly_node_without_a_scored_window(tmp_path):
    """The node's own status but no `anomaly: overall`: the section says the detector
    never ran, and the injected faults are missed."""
    write_mission(tmp_path / 'bag', anomaly_node=False)
    run = load_run(tmp_path / 'bag', '/asv1')
    run.anomaly_node = True
    anomalies = summarize(run)['anomalies']
    assert anomalies['detector_running'] is False and anomalies['false_alarms'] == 0
    assert [f['detected'] for f in anomalies['faults']] == [False, False]
