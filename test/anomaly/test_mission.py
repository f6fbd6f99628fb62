"""The mission report's anomaly section from synthetic detector outputs and fault reports."""
import math

import numpy as np
import pytest

from asv_autonomy.anomaly.bag_channels import FaultInterval
from asv_autonomy.anomaly.mission import faults_from_reports, mission_anomalies

ORIGIN = 500.0          # [s] bag time of the mission start
STEP = 0.1              # [s] the detector's 10 Hz windows


def detector_output(seconds=120.0, alarms=()):
    """Window times [s, bag time] from ORIGIN, alarm flags and groups: `alarms` lists
    (from, to, group) in mission seconds (to exclusive)."""
    times = ORIGIN + STEP * np.arange(int(round(seconds / STEP)) + 1)
    alarm = np.zeros(times.size, bool)
    group = np.full(times.size, '', dtype=object)
    for start, stop, name in alarms:
        inside = (times - ORIGIN >= start - 1e-9) & (times - ORIGIN < stop - 1e-9)
        alarm[inside] = True
        group[inside] = name
    return times, alarm, group


def fault(kind, channel, onset, end):
    return FaultInterval(kind, channel, ORIGIN + onset, ORIGIN + end)


def test_detected_missed_misattributed_and_false_alarms():
    faults = [fault('thruster_degradation', 'thruster_left', 20.0, 30.0),
              fault('gps_jump', 'gps', 50.0, 60.0),
              fault('imu_bias_drift', 'imu', 80.0, 90.0)]
    times, alarm, group = detector_output(alarms=[
        (21.5, 24.0, 'thruster_left'), (24.0, 25.0, 'hull'),   # detected 1.5 s late
        (31.0, 31.5, 'hull'),           # within the 2 s tolerance after the end: not false
        (85.0, 87.0, 'gps'),            # the IMU fault detected, wrong channel
        (100.0, 100.4, 'sonar'), (100.9, 101.2, 'sonar'),  # one flickering false alarm
        (110.0, 111.0, ''),             # a second false alarm, unattributed
    ])
    # Shuffled input: the section sorts by time.
    order = np.random.default_rng(0).permutation(times.size)
    out = mission_anomalies(times[order], alarm[order], group[order], faults, ORIGIN)

    assert out['detector_running'] is True
    left, gps, imu = out['faults']
    assert left == {'type': 'thruster_degradation', 'channel': 'thruster_left',
                    'onset_s': 20.0, 'end_s': 30.0, 'detected': True,
                    'detection_delay_s': pytest.approx(1.5, abs=1e-6),
                    'attributed_channel': 'thruster_left', 'attribution_correct': True}
    assert gps['detected'] is False and gps['detection_delay_s'] is None
    assert gps['attributed_channel'] is None and gps['attribution_correct'] is None
    assert imu['detected'] and imu['detection_delay_s'] == pytest.approx(5.0, abs=1e-6)
    assert imu['attributed_channel'] == 'gps' and imu['attribution_correct'] is False
    assert out['false_alarms'] == 2
    normal_s = (times.size - 3 * 100) * STEP          # windows outside the three faults
    assert out['false_alarms_per_hour'] == pytest.approx(2 / (normal_s / 3600.0), rel=1e-3)


def test_delay_is_measured_from_the_true_onset_and_late_alarm_in_tolerance_detects():
    # Onset between two windows (20.05 s); the first alarm at 21.3 s.
    times, alarm, group = detector_output(alarms=[(21.3, 22.0, 'sonar')])
    out = mission_anomalies(times, alarm, group,
                            [fault('sonar_spurious', 'sonar', 20.05, 21.0)], ORIGIN)
    only = out['faults'][0]
    assert only['detected'] and only['detection_delay_s'] == pytest.approx(1.25, abs=1e-6)
    assert only['attribution_correct'] is True and out['false_alarms'] == 0
    # 2.5 s after the end is beyond the tolerance: missed, and the alarm is a false one.
    times, alarm, group = detector_output(alarms=[(23.6, 24.0, 'sonar')])
    out = mission_anomalies(times, alarm, group,
                            [fault('sonar_spurious', 'sonar', 20.0, 21.0)], ORIGIN)
    assert out['faults'][0]['detected'] is False and out['false_alarms'] == 1


def test_no_faults_still_counts_false_alarms():
    times, alarm, group = detector_output(seconds=60.0, alarms=[(10.0, 12.0, 'imu')])
    out = mission_anomalies(times, alarm, group, [], ORIGIN)
    assert out['faults'] == [] and out['false_alarms'] == 1
    assert out['false_alarms_per_hour'] == pytest.approx(3600.0 / (times.size * STEP), rel=1e-3)
    quiet = mission_anomalies(times, np.zeros(times.size, bool), group, [], ORIGIN)
    assert quiet['false_alarms'] == 0 and quiet['false_alarms_per_hour'] == 0.0


def test_detector_that_scored_nothing_misses_every_fault():
    out = mission_anomalies([], [], [], [fault('gps_dropout', 'gps', 5.0, math.inf)], ORIGIN)
    assert out == {'faults': [{'type': 'gps_dropout', 'channel': 'gps', 'onset_s': 5.0,
                               'end_s': None, 'detected': False, 'detection_delay_s': None,
                               'attributed_channel': None, 'attribution_correct': None}],
                   'false_alarms': 0, 'false_alarms_per_hour': None,
                   'detector_running': False}


def test_fault_intervals_from_the_simulators_reports():
    """Onsets are simulation seconds, stamps bag time (start 1000 s); the simulator
    reports a fault one 0.02 s step after its onset."""
    reports = [
        (1010.0, [('gps_jump', 'gps', 9.98, 5.0)]),
        (1011.0, [('gps_jump', 'gps', 9.98, 5.0), ('stuck', 'hull', None, None)]),
        (1012.0, [('gps_jump', 'gps', 9.98, 5.0), ('stuck', 'hull', None, None)]),
        (1016.0, [('stuck', 'hull', None, None)]),
        (1017.0, []),                                         # the last one ended
        (1030.0, [('imu_bias_drift', 'imu', 29.5, -1.0)]),   # until the end
    ]
    got = faults_from_reports(reversed(reports))              # any order
    offset = 1000.02                                          # estimated start
    assert got == [FaultInterval('gps_jump', 'gps', pytest.approx(offset + 9.98),
                                 pytest.approx(offset + 14.98)),
                   FaultInterval('stuck', 'hull', 1011.0, 1017.0),
                   FaultInterval('imu_bias_drift', 'imu', pytest.approx(offset + 29.5),
                                 math.inf)]
    exact = faults_from_reports(reports, time_offset_s=1000.0)
    assert exact[0] == FaultInterval('gps_jump', 'gps', 1009.98, pytest.approx(1014.98))
    assert faults_from_reports([]) == []
