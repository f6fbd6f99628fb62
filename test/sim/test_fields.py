"""Current, wind and temperature fields (sim/fields.py)."""
import math

import numpy as np
import pytest

from asv_autonomy.sim.fields import (CurrentConfig, CurrentField, TemperatureConfig,
                                     TemperatureField, Wind, WindConfig)
from asv_autonomy.sim.world import World


@pytest.fixture(scope='module')
def world():
    return World()


@pytest.fixture(scope='module')
def current(world):
    return CurrentField(CurrentConfig(), world)


def grid(world, step=10.0):
    xmin, xmax, ymin, ymax = world.extent
    return np.meshgrid(np.arange(xmin, xmax, step), np.arange(ymin, ymax, step))


def test_current_is_realistic_in_water_and_zero_on_land(world, current):
    x, y = grid(world)
    depth = world.depth(x, y)
    u, v = current.velocity(x, y, 0.0)
    speed = np.hypot(u, v)
    deep = depth > CurrentConfig().shore_depth
    assert 0.05 < np.median(speed[deep]) < 0.3
    assert speed[deep].max() < 0.45
    assert np.all(speed[depth <= 0] == 0.0)
    # Spatially varying (gyre) and time varying (tide-like modulation).
    assert speed[deep].std() > 0.02
    u2, v2 = current.velocity(x, y, CurrentConfig().modulation_period / 4)
    assert np.abs(u2 - u)[deep].max() > 0.03
    # Passing the depth gives the same answer (the simulator's fast path).
    assert current.velocity(10.0, 20.0, 5.0, depth=world.depth(10.0, 20.0)) == pytest.approx(
        current.velocity(10.0, 20.0, 5.0))


def test_gyre_turns_counter_clockwise(world):
    cfg = CurrentConfig(drift=(0.0, 0.0), gyre_center=(100.0, 100.0))
    field = CurrentField(cfg, world)
    u, v = field.velocity(np.array([100.0 + cfg.gyre_radius]), np.array([100.0]), 0.0)
    assert abs(u[0]) < 1e-12 and v[0] == pytest.approx(cfg.gyre_speed)


def test_current_from_grid_file(tmp_path, world):
    xs, ys, ts = np.linspace(-700, 700, 8), np.linspace(-700, 700, 6), np.array([0.0, 100.0])
    u = np.stack([np.full((6, 8), 0.2), np.full((6, 8), 0.4)])
    v = np.zeros((2, 6, 8))
    path = tmp_path / 'current.npz'
    np.savez(path, x=xs, y=ys, t=ts, u=u, v=v)
    field = CurrentField(CurrentConfig(source=str(path)), world)
    deep = (100.0, 150.0)  # > shore_depth
    assert field.velocity(*deep, 0.0)[0] == pytest.approx(0.2)
    assert field.velocity(*deep, 50.0)[0] == pytest.approx(0.3)
    assert field.velocity(*deep, 500.0)[0] == pytest.approx(0.4)  # clamped in time
    np.savez(path, x=xs, y=ys, u=np.zeros((5, 8)), v=np.zeros((5, 8)))
    with pytest.raises(ValueError, match='current grid'):
        CurrentField(CurrentConfig(source=str(path)), world)


def test_wind_statistics_and_direction():
    cfg = WindConfig(mean_speed=5.0, direction_from_deg=270.0, gust_std=1.0,
                     gust_time_constant=2.0)
    wind = Wind(cfg, np.random.default_rng(0))
    samples = []
    for _ in range(40000):
        wind.advance(0.1)
        samples.append(wind.velocity)
    samples = np.array(samples)
    # From the west means blowing towards the east.
    np.testing.assert_allclose(samples.mean(axis=0), [5.0, 0.0], atol=0.1)
    np.testing.assert_allclose(samples.std(axis=0), [1.0, 1.0], rtol=0.1)
    lag = int(cfg.gust_time_constant / 0.1)
    g = samples[:, 1]
    corr = np.corrcoef(g[:-lag], g[lag:])[0, 1]
    assert corr == pytest.approx(math.exp(-1.0), abs=0.08)


def test_plume_is_warm_at_the_source_and_drifts_downstream(world, current):
    cfg = TemperatureConfig(plume_pulse_period=0.0)   # continuous release
    field = TemperatureField(cfg, current)
    sx, sy = cfg.plume_source
    u, v = current.velocity(sx, sy, 0.0)
    direction = np.array([u, v]) / np.hypot(u, v)
    near = field.plume(sx, sy)
    down = field.plume(sx + 100 * direction[0], sy + 100 * direction[1])
    up = field.plume(sx - 100 * direction[0], sy - 100 * direction[1])
    assert near > 2.0
    assert down > 0.3 and up < 0.05 * down
    before = field.plume(sx + 100 * direction[0], sy + 100 * direction[1])
    field.advance(600.0)
    assert field.time == pytest.approx(600.0)
    assert field.plume(sx, sy) > 2.0  # steady release keeps the source warm
    assert field.plume(sx + 100 * direction[0], sy + 100 * direction[1]) != before


@pytest.mark.parametrize('duty', [1.0, 0.4])
def test_plume_conserves_heat_away_from_shore(world, duty):
    still = CurrentField(CurrentConfig(drift=(0.0, 0.0), gyre_speed=0.0), world)
    cfg = TemperatureConfig(plume_source=(50.0, 110.0), plume_max_age=300.0,
                            plume_diffusivity=0.5, plume_pulse_period=200.0,
                            plume_pulse_duty=duty)
    field = TemperatureField(cfg, still)
    field.advance(100.0)    # in the off-phase with duty 0.4: some puffs are missing
    x, y = np.meshgrid(np.arange(-100, 200, 1.0), np.arange(-40, 260, 1.0))
    heat = field.plume(x, y).sum()  # 1 m^2 cells
    puffs = len(field._release)
    # A pulsed puff carries 1 / duty of the heat: the same heat on average over a period.
    assert heat == pytest.approx(puffs * cfg.plume_rate * cfg.plume_interval / duty, rel=0.01)
    # Every 15 s from -195 to 90 s; pulsed: only in the on-phase [-80, 0).
    assert puffs == (20 if duty == 1.0 else 5)


def test_pulsed_discharge_releases_only_in_the_on_phase(world, current):
    cfg = TemperatureConfig(plume_pulse_period=600.0)   # on the last 240 s of every 600 s
    assert TemperatureConfig().duty_fraction == 1.0      # the default: continuous
    field = TemperatureField(cfg, current)
    sx, sy = cfg.plume_source
    source = {0.0: float(field.plume(sx, sy))}
    for t in (120.0, 500.0, 720.0, 1100.0):
        field.advance(t)
        source[t] = float(field.plume(sx, sy))
        phase = np.mod(field._release, cfg.plume_pulse_period)
        assert len(phase) and (phase >= 360.0).all(), phase
    # Discharging (t mod 600 >= 360, and just before t = 0): warm at the outfall; between
    # pulses it cools.
    assert source[0.0] > 2.0 and source[500.0] > 2.0 and source[1100.0] > 2.0
    assert source[120.0] < 0.05 * source[0.0] and source[720.0] < 0.05 * source[500.0]
    assert [cfg.discharging(t) for t in (0.0, 359.0, 360.0, 599.0, 600.0, -15.0, -300.0)] == [
        False, False, True, True, False, True, False]


def test_pulsed_plume_changes_within_minutes_the_continuous_one_does_not(world, current):
    """RMS change of the plume over the default survey area in 300 s."""
    x, y = np.meshgrid(np.arange(-50, 151, 5.0), np.arange(40, 191, 5.0))
    change = {}
    for period in (0.0, 600.0):
        field = TemperatureField(TemperatureConfig(plume_pulse_period=period), current)
        field.advance(300.0)
        before = field.plume(x, y)
        field.advance(600.0)
        change[period] = np.sqrt(np.mean((field.plume(x, y) - before) ** 2))
    assert change[0.0] < 0.02 and change[600.0] > 0.5, change


def test_temperature_base_field_and_grid_evaluation(world, current):
    cfg = TemperatureConfig(plume_rate=0.0)
    field = TemperatureField(cfg, current)
    x, y = grid(world, 40.0)
    t = field.temperature(x, y)
    assert t.shape == x.shape
    depth = world.depth(x, y)
    expected = (cfg.surface_temperature + cfg.shallow_warming
                * np.exp(-np.clip(depth, 0, None) / cfg.shallow_depth_scale)
                + cfg.gradient[0] * x + cfg.gradient[1] * y)
    np.testing.assert_allclose(t, expected)
    water = depth > 0
    assert 10.0 < t[water].min() < t[water].max() < 25.0


@pytest.mark.parametrize('cls,kwargs', [
    (CurrentConfig, dict(drift=(1.0,))), (CurrentConfig, dict(gyre_radius=0.0)),
    (WindConfig, dict(gust_time_constant=0.0)), (TemperatureConfig, dict(plume_interval=0.0)),
    (TemperatureConfig, dict(plume_rate=-1.0)),
])
def test_configs_are_validated(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(plume_pulse_period=-600.0), 'plume_pulse_period must be finite and >= 0'),
    (dict(plume_pulse_period=math.inf), 'plume_pulse_period must be finite and >= 0'),
    (dict(plume_pulse_period=math.nan), 'plume_pulse_period must be finite and >= 0'),
    (dict(plume_pulse_duty=0.0), r'plume_pulse_duty must be in \(0, 1\]'),
    (dict(plume_pulse_duty=1.5), r'plume_pulse_duty must be in \(0, 1\]'),
    (dict(plume_pulse_duty=math.nan), r'plume_pulse_duty must be in \(0, 1\]'),
    (dict(plume_pulse_period=20.0, plume_pulse_duty=0.5), 'must last at least plume_interval'),
])
def test_bad_pulse_parameters_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemperatureConfig(**kwargs)


@pytest.mark.parametrize('kwargs', [dict(plume_pulse_period=0.0),
                                    dict(plume_pulse_duty=1.0),
                                    dict(plume_pulse_period=0.0, plume_pulse_duty=0.1)])
def test_continuous_release_is_period_0_or_duty_1(kwargs):
    cfg = TemperatureConfig(**kwargs)
    assert cfg.duty_fraction == 1.0 and all(cfg.discharging(t) for t in (0.0, 300.0, 599.0))
