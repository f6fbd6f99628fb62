"""`asv sim faults`: labelled missions whose labels match the bag's sim/faults and whose
data show the fault."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from asv_autonomy import bagio
from asv_autonomy.sim.faults import FaultSchedule

ASV = [sys.executable, '-m', 'asv_autonomy.cli.main']


def run(*args):
    return subprocess.run(ASV + ['sim', 'faults', *args], capture_output=True, text=True,
                          timeout=300)


def stamp(msg) -> float:
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


@pytest.mark.slow
def test_labelled_missions_match_their_bags(tmp_path):
    result = run('--seeds', '5', '--out', str(tmp_path), '--duration', '300',
                 '--faults-per-run', '1', '--families', 'gps_dropout', '--controller', 'baseline')
    assert result.returncode == 0, result.stderr
    folder = tmp_path / 'seed_0005'
    labels = json.loads((folder / 'labels.json').read_text())
    (fault,) = labels['faults']
    assert fault['type'] == 'gps_dropout' and fault['channel'] == 'gps'
    assert FaultSchedule.from_yaml(folder / 'faults.yaml').faults[0].kind == 'gps_dropout'
    bag = folder / 'bag'
    topics = bagio.bag_info(bag)['topics']
    for topic in ('/sensors/gps/fix', '/sensors/imu/data', '/sensors/sonar/depth',
                  '/odometry/filtered', '/thrusters/left/thrust', '/thrusters/right/thrust',
                  '/sim/faults', '/sim/ground_truth/odometry'):
        assert topics[topic]['count'] > 0, topic
    # sim/faults names the fault only inside its labelled interval.
    for message in bagio.read_messages(bag, ['/sim/faults']):
        msg = bagio.deserialize(message.msgtype, message.data)
        inside = fault['onset'] <= stamp(msg) < fault['end']
        assert [s.hardware_id for s in msg.status] == (['gps'] if inside else [])
    # The data show it: fixes during the interval carry no position, none outside.
    for message in bagio.read_messages(bag, ['/sensors/gps/fix']):
        fix = bagio.deserialize(message.msgtype, message.data)
        inside = fault['onset'] <= stamp(fix) < fault['end']
        assert (fix.status.status == -1 and math.isnan(fix.latitude)) == inside


@pytest.mark.slow
def test_a_normal_mission_has_no_labels(tmp_path):
    result = run('--seeds', '1..2', '--out', str(tmp_path), '--duration', '60',
                 '--faults-per-run', '0', '--controller', 'planner,baseline')
    assert result.returncode == 0, result.stderr
    for seed, controller in ((1, 'baseline'), (2, 'planner')):      # seed mod 2
        labels = json.loads((tmp_path / f'seed_{seed:04d}' / 'labels.json').read_text())
        assert labels['faults'] == [] and labels['controller'] == controller
        bag = tmp_path / f'seed_{seed:04d}' / 'bag'
        topics = bagio.bag_info(bag)['topics']
        assert '/sim/faults' not in topics
        # The controller starts late, as on the ROS graph: no thrust before it.
        idle = labels['idle_start_s']
        assert 0.0 <= idle <= 15.0
        first = 1e-9 * min(m.log_time_ns for m in
                           bagio.read_messages(bag, ['/thrusters/left/thrust']))
        assert first - labels['start_time'] == pytest.approx(idle, abs=0.15)
    assert len({json.loads((tmp_path / f'seed_{s:04d}' / 'labels.json').read_text())
                ['idle_start_s'] for s in (1, 2)}) == 2
    # Different seeds, different worlds/noise.
    fixes = [[bagio.deserialize(m.msgtype, m.data).latitude for m in
              bagio.read_messages(tmp_path / f'seed_{s:04d}' / 'bag', ['/sensors/gps/fix'])][:50]
             for s in (1, 2)]
    assert np.abs(np.subtract(fixes[0], fixes[1])).max() > 1e-6   # > 0.1 m apart


@pytest.mark.parametrize('args, message', [
    (['--seeds', '3..1'], 'need 0 <= A <= B'),
    (['--seeds', '1', '--families', 'gremlins'], 'unknown fault families'),
    (['--seeds', '1', '--duration', '100'], 'need more than'),
    (['--seeds', '1', '--controller', 'autopilot'], 'unknown controller autopilot'),
    (['--seeds', '1', '--idle-start', '-1'], '--idle-start must be in'),
])
def test_bad_arguments_are_refused(tmp_path, args, message):
    result = run(*args, '--out', str(tmp_path / 'out'))
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


def test_a_bad_params_file_is_named(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('/**/controller:\n  ros__parameters:\n    control_rate: -2.0\n')
    result = run('--seeds', '1', '--out', str(tmp_path / 'out'), '--params', str(params))
    assert result.returncode != 0 and 'params.yaml' in result.stderr, result.stderr
    assert 'control_rate' in result.stderr and 'Traceback' not in result.stderr


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    (tmp_path / 'seed_0001').mkdir()
    result = run('--seeds', '1', '--out', str(tmp_path), '--duration', '60',
                 '--faults-per-run', '0')
    assert result.returncode != 0 and 'use --force' in result.stderr
