"""The water current observer against the vessel model driven in a known current."""
import math

import numpy as np
import pytest

from asv_autonomy.anomaly import channels as ch
from asv_autonomy.anomaly.current_observer import CurrentObserver, CurrentObserverConfig
from asv_autonomy.planning import vessel

CURRENT = np.array([0.25, 0.1])        # [m/s] east, north
PARAMS = vessel.VesselParams()


def _drive(commands, duration, efficiency=(1.0, 1.0), dt=0.05, noise=0.005, seed=0):
    """Odometry rows (t, x, y, yaw, u, v, r) at 20 Hz of the vessel model in ``CURRENT``,
    commands (t, left, right) at 10 Hz from ``commands(t) -> (left, right)``; the
    velocities carry a little noise, as a filter's output does."""
    rng = np.random.default_rng(seed)
    state, thrust = np.array([0.0, 0.0, 0.3, 0.0, 0.0, 0.0]), np.zeros(2)
    rows, sent = [], []
    for k in range(int(duration / dt)):
        t = k * dt
        command = np.asarray(commands(t), dtype=float)
        if k % 2 == 0:
            sent.append((t, *command))
        state, thrust = vessel.step(state, thrust, command, CURRENT, (0.0, 0.0), dt, PARAMS,
                                    thrust_efficiency=efficiency)
        twist = state[3:6] + noise * rng.standard_normal(3) * (1.0, 1.0, 0.2)
        rows.append((t + dt, *state[:3], *twist))
    return np.array(rows), np.array(sent)


def _survey(t):
    """Forward with a slow weave and a few hard turns: headings all round."""
    turn = 8.0 * math.sin(2.0 * math.pi * t / 40.0)
    return 20.0 - turn, 20.0 + turn


def _observe(rows, idle_s=0.0, observer=None):
    observer = observer or CurrentObserver()
    for t, _, _, yaw, u, v, r in rows:
        observer.update(t, yaw, u, v, r, idle_s)
    return observer


def test_the_sway_equation_finds_the_current_under_way():
    rows, _ = _drive(_survey, 180.0)
    observer = _observe(rows)
    assert observer.estimate == pytest.approx(CURRENT, abs=0.03)
    assert observer.converged and observer.skipped == 0


def test_drifting_the_surge_equation_gives_the_current_along_the_hull():
    # No thrust, no turn: the sway equation only sees the current across the hull.
    rows, _ = _drive(lambda t: (0.0, 0.0), 60.0)
    yaw = rows[-1, 3]
    along = np.array([math.cos(yaw), math.sin(yaw)])
    across = np.array([-math.sin(yaw), math.cos(yaw)])
    sway_only = _observe(rows, idle_s=0.0)
    assert across @ sway_only.estimate == pytest.approx(across @ CURRENT, abs=0.02)
    assert abs(along @ (sway_only.estimate - CURRENT)) > 0.1     # still near the prior's 0
    assert not sway_only.converged
    both = _observe(rows, idle_s=math.inf)
    assert both.estimate == pytest.approx(CURRENT, abs=0.02) and both.converged


def test_a_weak_thruster_stays_in_the_residuals_and_not_in_the_current():
    rows, sent = _drive(_survey, 180.0, efficiency=(1.0, 0.5))
    observer, estimates = CurrentObserver(), []
    for t, _, _, yaw, u, v, r in rows:
        estimates.append(observer.update(t, yaw, u, v, r))
    assert observer.estimate == pytest.approx(CURRENT, abs=0.04)
    t, twist, yaw = rows[:, 0], rows[:, 4:7], rows[:, 3]
    streams = ch.command_residuals(t, twist, sent[:, 0], sent[:, 1], sent[:, 0], sent[:, 2],
                                   current=np.array(estimates), yaw=yaw)
    late = streams.samples['thrust_right_residual'][0] > 120.0
    right = streams.samples['thrust_right_residual'][1][late]
    left = streams.samples['thrust_left_residual'][1][late]
    commanded_right = np.interp(streams.samples['thrust_right_residual'][0][late],
                                sent[:, 0], sent[:, 2])
    # Half of the right command is lost; the left thruster is healthy.
    assert np.mean(right + 0.5 * commanded_right) == pytest.approx(0.0, abs=1.5)
    assert np.mean(np.abs(left)) < 2.5
    # Inverted on velocities over ground, the current's drag swamps it.
    calm = ch.command_residuals(t, twist, sent[:, 0], sent[:, 1], sent[:, 0], sent[:, 2])
    calm_left = calm.samples['thrust_left_residual'][1][
        calm.samples['thrust_left_residual'][0] > 120.0]
    assert np.mean(np.abs(calm_left)) > 3.0 * np.mean(np.abs(left))


def test_builder_uses_the_current_once_converged_and_calm_water_without_headings():
    rows, sent = _drive(_survey, 120.0)
    config = ch.ChannelConfig(warmup_s=1.0)
    with_heading, without = ch.BoatChannelBuilder(config), ch.BoatChannelBuilder(config)
    commands = iter(sent)
    pending = next(commands)
    for t, x, y, yaw, u, v, r in rows:
        while pending is not None and pending[0] <= t:
            for builder in (with_heading, without):
                builder.add_thrust('left', pending[0], pending[1])
                builder.add_thrust('right', pending[0], pending[2])
            pending = next(commands, None)
        with_heading.add_odometry(t, x, y, u, v, r, yaw)
        without.add_odometry(t, x, y, u, v, r)
    assert with_heading.current_observer.estimate == pytest.approx(CURRENT, abs=0.03)
    observed = with_heading.streams().samples['thrust_left_residual']
    calm = without.streams().samples['thrust_left_residual']
    assert calm[0].min() == pytest.approx(ch.command_settle_s(config), abs=0.06)
    assert observed[0].min() > calm[0].min() + 2.0           # after the observer converged
    late_observed = np.abs(observed[1][observed[0] > 60.0])
    late_calm = np.abs(calm[1][calm[0] > 60.0])
    assert late_observed.mean() < 0.4 * late_calm.mean()


def test_builder_uses_the_surge_equation_only_while_the_thrusters_are_idle():
    rows, _ = _drive(lambda t: (0.0, 0.0), 60.0)

    def drift(command):
        builder = ch.BoatChannelBuilder(ch.ChannelConfig(warmup_s=1.0))
        for t, x, y, yaw, u, v, r in rows:
            if command is not None:
                builder.add_thrust('left', t, command)
                builder.add_thrust('right', t, command)
            builder.add_odometry(t, x, y, u, v, r, yaw)
        return builder.current_observer

    assert drift(None).estimate == pytest.approx(CURRENT, abs=0.02)     # never commanded
    assert drift(0.0).estimate == pytest.approx(CURRENT, abs=0.02)      # commanded 0
    assert not drift(5.0).converged     # commanded thrust: the surge equation is not used


def test_observer_config_rejects_bad_values():
    with pytest.raises(ValueError, match='walk'):
        CurrentObserverConfig(walk=0.0)
    with pytest.raises(ValueError, match='idle_settle_s'):
        CurrentObserverConfig(idle_settle_s=-1.0)
    with pytest.raises(ValueError, match='current'):
        ch.ChannelConfig(current='calm')
