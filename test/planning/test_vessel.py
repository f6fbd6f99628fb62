"""Behaviour of the shared 3-DOF vessel model (planning/vessel.py)."""
import math

import numpy as np
import pytest
import torch

from asv_autonomy.planning.vessel import VesselParams, saturate_thrust, step, vessel_derivative

P = VesselParams()
CALM = np.zeros(2)


def simulate(state, command, seconds, params=P, current=CALM, wind=CALM, dt=0.02, **kw):
    thrust = np.zeros(2)
    state = np.asarray(state, float)
    for _ in range(int(round(seconds / dt))):
        state, thrust = step(state, thrust, np.asarray(command, float), current, wind, dt,
                             params, **kw)
    return state, thrust


def test_full_thrust_reaches_design_top_speed():
    state, thrust = simulate([0, 0, 0, 0, 0, 0], [45.0, 45.0], 40.0)
    # Steady state: 2 T = X_u u + X_uu u^2 + still-air drag on the frontal windage.
    air = 0.5 * P.air_density * P.wind_drag_coefficient_x * P.windage_area_frontal
    a, b, c = P.damping_surge_quadratic + air, P.damping_surge_linear, -90.0
    expected = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert state[3] == pytest.approx(expected, abs=1e-4)
    assert 1.9 < expected < 2.1
    np.testing.assert_allclose(thrust, [45.0, 45.0])


def test_equal_thrust_goes_straight_along_heading():
    yaw = 0.7
    state, _ = simulate([0, 0, yaw, 0, 0, 0], [30.0, 30.0], 20.0)
    assert abs(state[4]) < 1e-9 and abs(state[5]) < 1e-9
    assert state[2] == pytest.approx(yaw, abs=1e-9)
    assert math.atan2(state[1], state[0]) == pytest.approx(yaw, abs=1e-9)
    assert np.hypot(state[0], state[1]) > 20.0


@pytest.mark.parametrize('command,sign', [([20.0, 40.0], 1.0), ([40.0, 20.0], -1.0),
                                          ([-30.0, 30.0], 1.0)])
def test_differential_thrust_turns_with_right_sign(command, sign):
    state, _ = simulate([0, 0, 0, 0, 0, 0], command, 2.0)
    # More thrust on the right pushes the bow left: counter-clockwise (positive) yaw rate.
    assert sign * state[5] > 0.1
    assert sign * state[2] > 0.05


def test_full_differential_thrust_turns_nearly_in_place():
    state, thrust = np.zeros(6), np.zeros(2)
    far = 0.0
    for _ in range(1000):
        state, thrust = step(state, thrust, np.array([-35.0, 45.0]), CALM, CALM, 0.02, P)
        far = max(far, np.hypot(state[0], state[1]))
    assert 1.0 < state[5] < 1.6  # [rad/s] a brisk but bounded pivot
    assert far < 2.5  # [m] the net 10 N forward only draws a small circle


def test_straight_running_is_directionally_stable():
    # A yaw/sway kick at cruise speed dies out instead of growing into a spin.
    state, _ = simulate([0, 0, 0, 1.9, 0.3, 0.5], [40.0, 40.0], 15.0)
    assert abs(state[4]) < 1e-3 and abs(state[5]) < 1e-3
    assert state[3] > 1.8


def test_boat_without_thrust_drifts_with_the_current():
    current = np.array([0.3, -0.2])
    # No windage: still air would drag on a boat moving with the water.
    no_windage = VesselParams(windage_area_frontal=0.0, windage_area_lateral=0.0)
    state, _ = simulate([0, 0, 1.0, 0, 0, 0], [0.0, 0.0], 60.0, params=no_windage,
                        current=current)
    yaw, u, v = state[2], state[3], state[4]
    ground = [u * math.cos(yaw) - v * math.sin(yaw), u * math.sin(yaw) + v * math.cos(yaw)]
    np.testing.assert_allclose(ground, current, atol=1e-3)
    assert abs(state[5]) < 1e-6  # the Munk moment of the transient has died out


def test_side_wind_pushes_downwind_and_turns_about_the_lateral_resistance():
    # Heading east, wind blowing towards north (from the boat's right side).
    wind = np.array([0.0, 8.0])
    state, _ = simulate([0, 0, 0, 0, 0, 0], [0.0, 0.0], 3.0, wind=wind)
    assert state[1] > 0.0  # drifts north
    # Windage centre forward of the lateral resistance (skegs aft): the bow falls off
    # downwind (CCW here); with the windage further aft the bow turns into the wind.
    assert P.windage_center_x > P.lateral_resistance_x and state[2] > 0.0
    aft = VesselParams(windage_center_x=P.lateral_resistance_x - 0.3)
    state, _ = simulate([0, 0, 0, 0, 0, 0], [0.0, 0.0], 3.0, params=aft, wind=wind)
    assert state[1] > 0.0 and state[2] < 0.0


def test_energy_is_conserved_without_damping_and_dissipated_with_it():
    params = VesselParams(windage_area_frontal=0.0, windage_area_lateral=0.0)
    m = np.array([params.m11, params.m22, params.m33])

    def energy(s):
        return 0.5 * float((m * s[3:] ** 2).sum())

    start = np.array([0, 0, 0, 1.5, 0.4, 0.6])
    free, _ = simulate(start, [0.0, 0.0], 10.0, params=params, drag_scale=0.0)
    assert energy(free) == pytest.approx(energy(start), rel=1e-6)  # Coriolis does no work
    s, thrust, previous = start, np.zeros(2), energy(start)
    for _ in range(200):
        s, thrust = step(s, thrust, np.zeros(2), CALM, CALM, 0.02, params)
        assert energy(s) < previous
        previous = energy(s)


def test_thruster_lag_and_saturation():
    state = np.zeros(6)
    _, thrust = step(state, np.zeros(2), np.array([100.0, -100.0]), CALM, CALM,
                     P.thruster_time_constant, P)
    np.testing.assert_allclose(thrust, np.array([45.0, -35.0]) * (1 - math.exp(-1.0)))
    np.testing.assert_allclose(saturate_thrust(np.array([50.0, -50.0]), P), [45.0, -35.0])


def test_faults_failed_thruster_and_weed_drag():
    healthy, _ = simulate([0, 0, 0, 0, 0, 0], [40.0, 40.0], 5.0)
    failed, _ = simulate([0, 0, 0, 0, 0, 0], [40.0, 40.0], 5.0,
                         thrust_efficiency=np.array([0.0, 1.0]))
    weeds, _ = simulate([0, 0, 0, 0, 0, 0], [40.0, 40.0], 5.0, drag_scale=15.0)
    assert abs(healthy[5]) < 1e-9 and failed[5] > 0.1  # only the right one pushes: CCW
    assert weeds[3] < 0.3 * healthy[3]


def test_batched_numpy_and_torch_match_single_samples():
    rng = np.random.default_rng(3)
    states = rng.normal(size=(5, 6)) * [10, 10, 2, 1, 0.3, 0.5]
    thrust = rng.uniform(-35, 45, size=(5, 2))
    command = rng.uniform(-60, 60, size=(5, 2))
    current = rng.normal(size=(5, 2)) * 0.2
    wind = rng.normal(size=(5, 2)) * 5
    eff = rng.uniform(0, 1, size=(5, 2))
    drag = rng.uniform(1, 5, size=5)
    batch_state, batch_thrust = step(states, thrust, command, current, wind, 0.05, P, eff, drag)
    t = [torch.tensor(a) for a in (states, thrust, command, current, wind, eff, drag)]
    torch_state, torch_thrust = step(t[0], t[1], t[2], t[3], t[4], 0.05, P, t[5], t[6])
    np.testing.assert_allclose(torch_state.numpy(), batch_state, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(torch_thrust.numpy(), batch_thrust, rtol=1e-12)
    for i in range(5):
        one_state, one_thrust = step(states[i], thrust[i], command[i], current[i], wind[i],
                                     0.05, P, eff[i], drag[i])
        np.testing.assert_allclose(one_state, batch_state[i], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(one_thrust, batch_thrust[i], rtol=1e-12)
        deriv = vessel_derivative(states[i], thrust[i], current[i], wind[i], P, eff[i], drag[i])
        np.testing.assert_allclose(vessel_derivative(states, thrust, current, wind, P, eff,
                                                     drag)[i], deriv, rtol=1e-12, atol=1e-12)


def test_torch_float32_broadcasting_and_gradients():
    states = torch.zeros(1000, 6, dtype=torch.float32)
    command = torch.full((1000, 2), 30.0, requires_grad=True)
    new, thrust = step(states, torch.zeros(1000, 2), command, torch.tensor([0.1, 0.0]),
                       torch.tensor([0.0, 3.0]), 0.1, P)
    assert new.shape == (1000, 6) and new.dtype == torch.float32
    assert thrust.shape == (1000, 2)
    new[:, 3].sum().backward()
    assert torch.all(command.grad > 0)


def test_params_are_validated():
    with pytest.raises(ValueError, match='mass'):
        VesselParams(mass=0.0)
    with pytest.raises(ValueError, match='finite'):
        VesselParams(damping_sway_linear=float('nan'))
    with pytest.raises(TypeError):
        step([0.0] * 6, np.zeros(2), np.zeros(2), CALM, CALM, 0.1, P)


def test_thruster_power_matches_the_datasheet_point_and_grows_with_thrust_to_the_1_5():
    from asv_autonomy.planning.vessel import thruster_power
    full = thruster_power(np.array([51.5, 0.0]), P)
    assert full == pytest.approx(390.0, rel=0.01)
    both = thruster_power(torch.tensor([[20.0, -20.0]]), P)
    assert both.shape == (1,)
    assert float(both[0]) == pytest.approx(2 * P.thruster_power_coefficient * 20.0 ** 1.5)
