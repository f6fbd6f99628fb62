"""End to end: `asv sim run` and `asv launch sim` with real ROS 2 processes.

Run inside a private network namespace (`make test`); skipped elsewhere (ros_env).
"""
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from asv_autonomy import bagio

ASV = [sys.executable, '-m', 'asv_autonomy.cli.main']
# Topics the nodes of the foundation issue produce (DESIGN.md §2), relative names.
CONTRACT_TOPICS = (
    'clock', 'sensors/gps/fix', 'sensors/imu/data', 'sensors/sonar/depth',
    'sensors/water/temperature', 'sensors/camera/image_raw', 'sensors/camera/camera_info',
    'odometry/filtered', 'thrusters/left/thrust', 'thrusters/right/thrust', 'plan/path',
    'plan/goal', 'diagnostics', 'sim/ground_truth/odometry', 'sim/ground_truth/bathymetry',
    'sim/ground_truth/temperature', 'sim/ground_truth/navigable_mask',
    'map/bathymetry', 'map/bathymetry/uncertainty', 'map/temperature',
    'map/temperature/uncertainty', 'perception/navigable/polyline',
    'perception/navigable/mask', 'perception/navigable/grid')
SIMULATED_S = 70.0   # enough to reach the survey (40 m away) and its first sampling goal
# config/autonomy.yaml's survey_polygon (a box): x0, y0, x1, y1 [m].
SURVEY_BOX = (-50.0, 40.0, 150.0, 190.0)


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def _started_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r'\[launch\] \S+ started \(pid (\d+)\)', output)]


@pytest.mark.ros
@pytest.mark.slow
def test_simulated_mission_closes_the_loop(ros_env, tmp_path):
    out = tmp_path / 'runs'
    result = subprocess.run(
        ASV + ['sim', 'run', '--duration', str(SIMULATED_S), '--rtf', '5', '--out', str(out)],
        env=ros_env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = (out / 'latest').resolve()
    summary = json.loads((run_dir / 'summary.json').read_text())
    assert (run_dir / 'report.png').stat().st_size > 10_000

    # Every node ran to the end and exited cleanly.
    assert summary['nodes'] == {'sim': 0, 'localization': 0, 'mapping': 0, 'segmentation': 0,
                                'anomaly': 0, 'controller': 0, 'bag_recorder': 0}
    # Every contract topic of the existing nodes carried messages.
    missing = [t for t in CONTRACT_TOPICS if summary['messages'].get(t, 0) == 0]
    assert not missing, summary['messages']
    # Rates: sensors at their simulated rates, within recording slack.
    assert summary['messages']['sensors/imu/data'] >= 0.9 * 50 * SIMULATED_S
    assert summary['messages']['sensors/gps/fix'] >= 0.9 * 5 * SIMULATED_S
    assert abs(summary['sim_duration_s'] - SIMULATED_S) < 2.0
    dropped = dict(summary['dropped_inputs'])
    # The clock waits for the autonomy nodes, so at most a few readings precede the first
    # pose (the mapping node drops those, counted as no_pose).
    assert dropped.pop('mapping') <= 10, summary['dropped_inputs']
    assert dropped == {'anomaly': 0, 'controller': 0, 'localization': 0, 'segmentation': 0,
                       'sim': 0}
    # The shipped segmenter against the simulator's true masks (1 Hz camera).
    assert summary['segmentation_frames'] >= 0.5 * SIMULATED_S
    assert summary['segmentation_iou'] > 0.85, summary['segmentation_iou']

    # The planner surveyed: it travelled, the estimate tracked the truth, its first
    # sampling goal lies in the survey area and the true track reached it.
    assert summary['distance_m'] > 0.4 * SIMULATED_S   # > 0.4 m/s on average
    assert summary['localization_rmse_m'] < 2.0
    assert summary['collisions'] == 0 and summary['energy_J'] > 1000.0
    assert summary['goal_reached'] is None      # a survey: no operator goal
    # The shipped anomaly detector scored the mission; no fault was injected. (Before the
    # node scored up to the data's time with buffered inputs it raised 270-390 false
    # alarms per hour here, 5-7 in these 70 s.)
    anomalies = summary['anomalies']
    assert anomalies['detector_running'] and anomalies['faults'] == []
    assert anomalies['false_alarms'] <= 1, anomalies
    # Maps of both fields, published at 0.2 Hz of simulated time, match the truth near the
    # track: depths 3-33 m, temperatures 15-20 degC.
    assert summary['messages']['map/bathymetry'] >= 0.2 * SIMULATED_S - 4
    assert set(summary['map_rmse']) == {'bathymetry', 'temperature'}
    assert 0.0 < summary['map_rmse']['bathymetry'] < 1.5, summary['map_rmse']
    assert 0.0 < summary['map_rmse']['temperature'] < 0.4, summary['map_rmse']
    assert set(summary['map_update_ms_p95']) == {'bathymetry', 'temperature'}
    assert all(0.0 < ms < 1000.0 for ms in summary['map_update_ms_p95'].values())
    # The lawnmower replayed headless over the same distance, both maps scored at the
    # same points of the survey area.
    versus = summary['survey_vs_lawnmower']
    assert versus['distance_m'] == pytest.approx(summary['distance_m'], abs=0.01)
    assert versus['lawnmower_distance_m'] == pytest.approx(versus['distance_m'], abs=2.0)
    assert versus['points'] > 0, versus
    assert versus['map_rmse'] > 0.0 and versus['lawnmower_map_rmse'] > 0.0, versus
    truth, goals = [], []
    for topic, msgtype, _, raw in bagio.read_messages(run_dir / 'bag'):
        if topic == '/sim/ground_truth/odometry':
            p = bagio.deserialize(msgtype, raw).pose.pose.position
            truth.append((p.x, p.y))
        elif topic == '/plan/goal':
            p = bagio.deserialize(msgtype, raw).pose.position
            goals.append((p.x, p.y))
    truth, goals = np.array(truth), np.array(goals)
    x0, y0, x1, y1 = SURVEY_BOX
    in_survey = goals[(goals[:, 0] >= x0) & (goals[:, 0] <= x1) & (goals[:, 1] >= y0)
                      & (goals[:, 1] <= y1)]
    assert len(in_survey), 'no sampling goal in the survey area'
    assert np.hypot(*(truth - in_survey[0]).T).min() < 5.0, 'never reached its first goal'


@pytest.mark.ros
@pytest.mark.slow
def test_goto_mission_reaches_the_operator_goal(ros_env, tmp_path):
    out = tmp_path / 'runs'
    result = subprocess.run(
        ASV + ['sim', 'run', '--duration', '60', '--rtf', '5', '--out', str(out),
               'goal:=-20,35'],
        env=ros_env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(((out / 'latest').resolve() / 'summary.json').read_text())
    assert summary['goal_reached'] is True, summary
    assert summary['collisions'] == 0
    assert summary['energy_J'] > 1000.0
    assert summary['survey_vs_lawnmower'] is None     # not a survey


@pytest.mark.ros
@pytest.mark.slow
def test_launch_sim_shuts_down_within_5_s_and_leaves_no_process(ros_env, tmp_path):
    env = dict(ros_env, ROS_LOG_DIR=str(tmp_path / 'log'))
    launch = subprocess.Popen(ASV + ['launch', 'sim', 'duration:=0.0', 'rtf:=5.0'], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    deadline = time.monotonic() + 60.0
    # Wait until the controller publishes thrust, i.e. the loop is closed.
    while time.monotonic() < deadline:
        line = launch.stdout.readline()
        output.append(line)
        if len(_started_pids(''.join(output))) == 4:
            break
    time.sleep(8.0)
    assert launch.poll() is None, ''.join(output)
    pids = _started_pids(''.join(output))
    assert len(pids) == 4 and all(_alive(pid) for pid in pids), ''.join(output)
    start = time.monotonic()
    launch.send_signal(signal.SIGINT)
    rest, _ = launch.communicate(timeout=10.0)
    elapsed = time.monotonic() - start
    assert elapsed < 5.0, rest
    assert launch.returncode == 0, rest
    assert not [pid for pid in pids if _alive(pid)], rest


@pytest.mark.parametrize('argv, message', [
    (['launch', 'no_such_profile'], 'no_such_profile'),
    (['launch', '/tmp/does/not/exist.launch.xml'], 'exist.launch.xml'),
    (['launch', 'sim', 'duration'], 'duration'),
    (['launch', 'sim', 'not_declared:=1'], 'not_declared'),
    (['sim', 'run', '--duration', '-5'], '--duration'),
    (['sim', 'run', 'seed:=3'], 'seed'),
    (['report', '/tmp/not-a-run-folder'], 'not a mission run'),
])
def test_bad_input_is_one_clear_line_and_nothing_written(tmp_path, argv, message):
    argv = [a if a != 'runs' else str(tmp_path) for a in argv]
    result = subprocess.run(ASV + argv + (['--out', str(tmp_path / 'runs')]
                                          if argv[:2] == ['sim', 'run'] else []),
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('asv: error:') and message in lines[0], \
        result.stderr
    assert not (tmp_path / 'runs').exists()


def test_bad_fault_schedule_is_refused_before_anything_runs(tmp_path):
    schedule = tmp_path / 'faults.yaml'
    schedule.write_text('faults:\n  - type: thruster_explosion\n    onset: 3\n')
    result = subprocess.run(ASV + ['sim', 'run', '--faults', str(schedule), '--out',
                                   str(tmp_path / 'runs')],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert 'thruster_explosion' in result.stderr and str(schedule) in result.stderr
    assert not (tmp_path / 'runs').exists()
