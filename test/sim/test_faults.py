"""Fault schedule and effects (sim/faults.py)."""
import math
from pathlib import Path

import numpy as np
import pytest

from asv_autonomy.sim.faults import (FAMILIES, NO_EFFECTS, Fault, FaultSchedule, combine,
                                     random_schedule)

EXAMPLE = Path(__file__).resolve().parents[2] / 'config' / 'faults_example.yaml'


def write(tmp_path, text):
    path = tmp_path / 'faults.yaml'
    path.write_text(text)
    return path


def test_example_schedule_has_one_fault_of_each_family():
    schedule = FaultSchedule.from_yaml(EXAMPLE)
    assert sorted(f.kind for f in schedule.faults) == sorted(FAMILIES)
    for f in schedule.faults:
        assert f.active(f.onset) and not f.active(f.onset - 1e-6)
        assert not f.active(f.end)


@pytest.mark.parametrize('text,problem', [
    ('faults:\n  - type: meteor_strike\n    onset: 1\n', "unknown fault type 'meteor_strike'"),
    ('faults:\n  - type: gps_dropout\n    onset: 1\n    colour: red\n', "unknown key(s) ['colour']"),
    ('faults:\n  - type: gps_dropout\n    onset: 1\n    duration: -5\n', 'duration must be >= 0'),
    ('faults:\n  - type: gps_dropout\n    onset: -1\n', 'onset must be >= 0'),
    ('faults:\n  - type: gps_dropout\n', "missing key 'onset'"),
    ('faults:\n  - type: stuck\n    onset: 1\n', "needs key(s) ['drag_multiplier']"),
    ('faults:\n  - type: thruster_failure\n    onset: 1\n    side: middle\n', 'side must be'),
    ('faults:\n  - type: thruster_degradation\n    onset: 1\n    side: left\n    efficiency: 2\n',
     'efficiency must be in [0, 1]'),
    ('faults:\n  - type: gps_jump\n    onset: 1\n    offset: [1]\n', 'offset must be a list'),
    ('faults:\n  - type: sonar_spurious\n    onset: 1\n    probability: 0.2\n'
     '    depth_range: [3, 1]\n', 'depth_range must satisfy'),
    ('faults:\n  - type: gps_dropout\n    onset: soon\n', 'onset must be a finite number'),
    ('faults:\n  - gps_dropout\n', 'expected a mapping'),
])
def test_invalid_entries_name_file_entry_and_problem(tmp_path, text, problem):
    # Entry 1 is the bad one: entry 0 is valid.
    path = write(tmp_path, 'faults:\n  - type: gps_dropout\n    onset: 0\n'
                 + text.replace('faults:\n', ''))
    with pytest.raises(ValueError) as err:
        FaultSchedule.from_yaml(path)
    message = str(err.value)
    assert str(path) in message and 'fault entry 1' in message and problem in message


@pytest.mark.parametrize('text,problem', [
    ('faults: [\n', 'cannot read fault schedule'),
    ('- type: gps_dropout\n', "single key 'faults'"),
    ('faults: {type: gps_dropout}\n', "'faults' must be a list"),
])
def test_malformed_files_are_clear_errors(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match='faults.yaml') as err:
        FaultSchedule.from_yaml(path)
    assert problem in str(err.value)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ValueError, match='cannot read'):
        FaultSchedule.from_yaml(tmp_path / 'nope.yaml')
    assert FaultSchedule.from_yaml(write(tmp_path, '')).faults == []


def test_active_window_and_until_the_end():
    schedule = FaultSchedule([Fault('gps_dropout', 10.0, 5.0), Fault('gps_dropout', 20.0)])
    assert [len(schedule.active(t)) for t in (9.9, 10.0, 14.9, 15.0, 20.0, 1e6)] == \
        [0, 1, 1, 0, 1, 1]
    assert schedule.faults[1].end == math.inf


def test_effects_of_each_family():
    at = 30.0
    faults = [
        Fault('thruster_degradation', 0.0, params=dict(side='left', efficiency=0.5)),
        Fault('thruster_failure', 0.0, params=dict(side='right')),
        Fault('stuck', 0.0, params=dict(drag_multiplier=10.0)),
        Fault('imu_bias_drift', 10.0, params=dict(gyro_drift_rate=0.001,
                                                   heading_drift_rate=0.01)),
        Fault('gps_dropout', 0.0),
        Fault('gps_jump', 0.0, params=dict(offset=[5.0, -3.0])),
        Fault('sonar_spurious', 0.0, params=dict(probability=0.5, depth_range=[1.0, 2.0])),
        Fault('sonar_spurious', 0.0, params=dict(probability=0.2, depth_range=[4.0, 5.0])),
    ]
    e = combine(faults, at)
    assert e.thrust_efficiency == (0.5, 0.0)
    assert e.drag_scale == 10.0
    assert e.gyro_bias == pytest.approx(0.02) and e.heading_bias == pytest.approx(0.2)
    assert e.gps_dropout and e.gps_offset == (5.0, -3.0)
    assert e.sonar_spurious_probability == pytest.approx(1 - 0.5 * 0.8)
    assert e.sonar_spurious_range == (1.0, 2.0)
    assert combine([], at) == NO_EFFECTS
    assert [f.channel for f in faults[:4]] == ['thruster_left', 'thruster_right', 'hull', 'imu']


def test_schedule_effects_use_only_active_faults():
    schedule = FaultSchedule([Fault('stuck', 5.0, 5.0, dict(drag_multiplier=20.0))])
    assert schedule.effects(4.0) == NO_EFFECTS
    assert schedule.effects(6.0).drag_scale == 20.0
    schedule.add(Fault('gps_dropout', 0.0))
    assert schedule.effects(1.0).gps_dropout


# --- random schedules (asv sim faults) --------------------------------------------------------

def test_random_schedule_is_separated_after_the_warmup_and_reproducible():
    for seed in range(20):
        schedule = random_schedule(np.random.default_rng(seed), 600.0, count=3, warmup=120.0,
                                   fault_duration=(20.0, 90.0), gap=40.0)
        faults = schedule.faults
        assert len(faults) == 3 and faults[0].onset >= 120.0 and faults[-1].end <= 600.0
        for first, second in zip(faults, faults[1:]):
            assert second.onset - first.end >= 40.0
        assert all(20.0 <= f.duration <= 90.0 for f in faults)
    again = random_schedule(np.random.default_rng(7), 600.0, count=3)
    assert [f.params for f in again.faults] == [
        f.params for f in random_schedule(np.random.default_rng(7), 600.0, count=3).faults]


def test_random_schedule_covers_the_families_and_refuses_what_cannot_fit():
    rng = np.random.default_rng(0)
    seen = {f.kind for _ in range(60) for f in random_schedule(rng, 600.0, count=2).faults}
    assert seen == set(FAMILIES)
    only = random_schedule(rng, 600.0, count=2, families=('gps_dropout',))
    assert {f.kind for f in only.faults} == {'gps_dropout'}
    with pytest.raises(ValueError, match='need more than'):
        random_schedule(rng, 200.0, count=2)
    with pytest.raises(ValueError, match='unknown fault families'):
        random_schedule(rng, 600.0, families=('gremlins',))


def test_schedule_round_trips_through_yaml(tmp_path):
    schedule = random_schedule(np.random.default_rng(3), 600.0, count=3)
    schedule.to_yaml(tmp_path / 'faults.yaml')
    assert FaultSchedule.from_yaml(tmp_path / 'faults.yaml').faults == schedule.faults
