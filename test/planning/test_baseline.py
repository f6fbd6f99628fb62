"""Baseline survey controller: lawnmower geometry, thrust allocation, and closed loop on
the shared vessel model with a cross current."""
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.measurements import InvalidInput, PlanarOdometry
from asv_autonomy.planning.baseline import (BaselineConfig, BaselineController, allocate,
                                            lawnmower)
from asv_autonomy.planning.vessel import VesselParams, step

VESSEL = VesselParams()
PENTAGON = (0.0, 0.0, 100.0, 30.0, 90.0, 70.0, 40.0, 95.0, -10.0, 50.0)


def edge_distances(polygon, points):
    """(P, V) signed distance [m] of points inside each edge of a convex polygon."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    inward = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    inward /= np.hypot(inward[:, 0], inward[:, 1])[:, None]
    inward *= np.sign(((polygon.mean(0) - polygon) * inward).sum(1))[:, None]
    return np.einsum('pvi,vi->pv', points[:, None, :] - polygon[None], inward)


@pytest.mark.parametrize('flat, spacing, inset', [
    (BaselineConfig().survey_polygon, 20.0, 5.0), (PENTAGON, 15.0, 4.0), (PENTAGON, 7.0, 0.0)])
def test_lawnmower_lines_cover_the_polygon_with_the_spacing_and_stay_inside(flat, spacing,
                                                                            inset):
    polygon = np.reshape(flat, (-1, 2))
    path = lawnmower(polygon, spacing, inset)
    starts, ends = path[0::2], path[1::2]
    # Inside the inset polygon, and each line end touches it (clipped, not shortened).
    dist = edge_distances(polygon, path)
    assert (dist >= inset - 1e-6).all()
    assert np.allclose(dist.min(axis=1), inset, atol=1e-6)
    # Lines parallel to the longest edge, alternating in direction.
    edges = np.roll(polygon, -1, axis=0) - polygon
    longest = edges[np.argmax(np.hypot(edges[:, 0], edges[:, 1]))]
    along = longest / np.hypot(*longest)
    direction = (ends - starts) @ along / np.hypot(*(ends - starts).T)
    assert np.allclose(np.abs(direction), 1.0)
    assert (np.sign(direction[1:]) != np.sign(direction[:-1])).all()
    # Consecutive lines are exactly `spacing` apart (the last strip may be narrower).
    normal = np.array([-along[1], along[0]])
    offsets = starts @ normal
    gaps = np.abs(np.diff(offsets))
    assert np.allclose(gaps[:-1], spacing) and 0 < gaps[-1] <= spacing + 1e-9
    # Coverage: every point of the inset polygon is within half a spacing of a line.
    rng = np.random.default_rng(0)
    lo, hi = polygon.min(0), polygon.max(0)
    points = rng.uniform(lo, hi, (20000, 2))
    points = points[(edge_distances(polygon, points) >= inset).all(axis=1)]
    perpendicular = np.abs(points @ normal - offsets[:, None]).min(axis=0)
    assert perpendicular.max() <= spacing / 2 + 1e-9


def test_lawnmower_rejects_polygons_it_cannot_survey():
    with pytest.raises(ValueError, match='convex'):
        BaselineConfig(survey_polygon=(0, 0, 10, 0, 5, 2, 10, 10, 0, 10))
    with pytest.raises(ValueError, match='intersect|convex'):
        BaselineConfig(survey_polygon=(0, 0, 10, 10, 10, 0, 0, 10))
    with pytest.raises(ValueError, match='pairs'):
        BaselineConfig(survey_polygon=(0, 0, 10, 0, 10))
    with pytest.raises(ValueError):
        BaselineController(BaselineConfig(survey_polygon=(0, 0, 50, 0, 50, 6, 0, 6)), VESSEL)
    with pytest.raises(ValueError, match='hold_radius'):
        BaselineConfig(hold_radius=1.0, acceptance_radius=3.0)


def test_allocation_respects_limits_signs_and_yaw_priority():
    fwd, rev, arm = VESSEL.max_thrust_forward, VESSEL.max_thrust_reverse, VESSEL.thruster_y
    left, right = allocate(30.0, 0.0, VESSEL)
    assert left == right == 15.0
    left, right = allocate(30.0, 3.0, VESSEL)                  # CCW moment: right pushes more
    assert right > left and left + right == pytest.approx(30.0)
    assert arm * (right - left) == pytest.approx(3.0)
    left, right = allocate(500.0, 7.0, VESSEL)                 # too much surge: moment kept
    assert right == fwd and arm * (right - left) == pytest.approx(7.0)
    left, right = allocate(-500.0, -7.0, VESSEL)               # reverse limit is weaker
    assert right == -rev and arm * (right - left) == pytest.approx(-7.0)
    left, right = allocate(0.0, 1e4, VESSEL)                   # largest possible differential
    assert (left, right) == (-rev, fwd)
    rng = np.random.default_rng(1)
    for surge, moment in rng.normal(0, [100.0, 30.0], (500, 2)):
        left, right = allocate(surge, moment, VESSEL)
        assert -rev - 1e-9 <= min(left, right) and max(left, right) <= fwd + 1e-9
        feasible = abs(moment) / arm <= fwd + rev
        if feasible:
            assert arm * (right - left) == pytest.approx(moment)


def simulate(controller, state, duration, current=(0.0, 0.2), control_period=0.1, dt=0.02):
    """Closed loop with the shared vessel model (true odometry); returns (times, states,
    commands) sampled at the control rate, stopping early when the survey is done."""
    thrust = np.zeros(2)
    current, wind = np.asarray(current, float), np.zeros(2)
    per_control = round(control_period / dt)
    times, states, commands = [], [], []
    for k in range(round(duration / dt)):
        if k % per_control == 0:
            t = k * dt
            cmd = controller.plan(PlanarOdometry(t, *state))
            times.append(t), states.append(state.copy()), commands.append(cmd)
            if cmd.done and cmd.mode == 'survey':
                break
        state, thrust = step(state, thrust, np.array([cmd.thrust_left, cmd.thrust_right]),
                             current, wind, dt, VESSEL)
    return np.array(times), np.array(states), commands


def test_closed_loop_survey_in_a_cross_current_follows_the_lines_and_completes():
    config = BaselineConfig(survey_polygon=(0.0, 0.0, 100.0, 0.0, 100.0, 50.0, 0.0, 50.0),
                            line_spacing=12.5)
    controller = BaselineController(config, VESSEL)
    path = controller.path
    # 0.2 m/s current across the (east-west) survey lines.
    times, states, commands = simulate(controller, np.array([-10.0, -10.0, 0.5, 0, 0, 0]),
                                       900.0, current=(0.0, 0.2))
    assert commands[-1].done and commands[-1].thrust_left == commands[-1].thrust_right == 0.0
    assert commands[-1].waypoint_index == len(path) - 1
    visited = [c.waypoint_index for c in commands]
    assert visited == sorted(visited) and set(visited) == set(range(len(path)))
    on_survey = np.array([c.waypoint_index > 0 for c in commands])
    xte = np.array([c.cross_track_error for c in commands])[on_survey]
    assert np.abs(xte).mean() < 1.5, f'mean cross-track error {np.abs(xte).mean():.2f} m'
    # Along the lines (not in the turns) the boat stays on them.
    on_line = np.array([c.waypoint_index % 2 == 1 for c in commands])[on_survey]
    assert np.abs(xte[on_line]).mean() < 1.0
    # It never leaves the survey polygon once it got there.
    pos = states[on_survey, :2]
    assert (pos > [0, 0]).all() and (pos < [100, 50]).all()
    # It passed close to every waypoint (a line's end is not cut short).
    gaps = np.hypot(*(pos[:, None, :] - path[None, 1:]).transpose(2, 0, 1)).min(axis=0)
    assert gaps.max() < config.acceptance_radius + 0.5
    speed = np.hypot(states[on_survey, 3], states[on_survey, 4])
    assert np.median(speed) == pytest.approx(config.speed, abs=0.15)
    thrusts = np.array([[c.thrust_left, c.thrust_right] for c in commands])
    assert thrusts.min() >= -VESSEL.max_thrust_reverse and thrusts.max() <= \
        VESSEL.max_thrust_forward


def test_goto_reaches_the_goal_and_holds_against_the_current():
    config = BaselineConfig()
    controller = BaselineController(config, VESSEL)
    controller.set_goal(40.0, 25.0)
    times, states, commands = simulate(controller, np.array([0.0, 0.0, np.pi, 0, 0, 0]),
                                       240.0, current=(0.15, -0.15))
    dist = np.hypot(states[:, 0] - 40.0, states[:, 1] - 25.0)
    reached = np.argmax(dist < config.acceptance_radius)
    assert dist[reached] < config.acceptance_radius and times[reached] < 90.0
    assert commands[reached].done and commands[reached].mode == 'goto'
    assert commands[reached].thrust_left == commands[reached].thrust_right == 0.0
    # Holding: it drifts with zero thrust, comes back when beyond hold_radius.
    assert dist[reached:].max() < config.hold_radius + 1.5
    assert not all(c.done for c in commands[reached:]), 'the current must push it off once'
    assert commands[-1].target == (40.0, 25.0)


def test_done_survey_commands_zero_thrust_and_config_replace_validates():
    config = BaselineConfig(survey_polygon=(0.0, 0.0, 30.0, 0.0, 30.0, 12.0, 0.0, 12.0),
                            line_spacing=10.0, inset=2.0)
    controller = BaselineController(config, VESSEL)
    for x, y in controller.path:   # teleport along the path
        cmd = controller.plan(PlanarOdometry(0.0, x, y, 0.0))
    assert cmd.done and (cmd.thrust_left, cmd.thrust_right) == (0.0, 0.0)
    with pytest.raises(InvalidInput) as info:
        controller.plan(PlanarOdometry(1.0, float('nan'), 0.0, 0.0))
    assert info.value.reason == 'nan'
    with pytest.raises(ValueError):
        replace(config, speed=0.0)
    with pytest.raises(ValueError):
        replace(config, heading_kp=-1.0)
