"""Simulated sensors (sim/sensors.py): noise matches the reported covariance, rates, faults."""
import math

import numpy as np
import pytest

from asv_autonomy.geodesy import Datum, LocalENU
from asv_autonomy.measurements import FIX, FIX_NONE, quaternion_to_yaw, wrap_angle
from asv_autonomy.sim.faults import NO_EFFECTS, FaultEffects
from asv_autonomy.sim.sensors import (Gnss, GnssConfig, Imu, ImuConfig, RateTimer, Sonar,
                                      SonarConfig, TemperatureProbe, TemperatureProbeConfig)

ENU = LocalENU(Datum())
N = 4000


def gnss_errors(effects, n=N):
    gnss = Gnss(GnssConfig(), ENU, np.random.default_rng(1))
    fixes = [gnss.measure(float(i), 30.0, -20.0, effects) for i in range(n)]
    lat = np.array([f.latitude for f in fixes])
    lon = np.array([f.longitude for f in fixes])
    e, nn, u = ENU.to_enu(lat, lon, np.array([f.altitude for f in fixes]))
    return np.stack([e - 30.0, nn + 20.0, u - GnssConfig().antenna_height], axis=1), fixes


def test_gnss_noise_matches_reported_covariance():
    err, fixes = gnss_errors(NO_EFFECTS)
    cov = fixes[0].position_covariance
    assert fixes[0].status == FIX and fixes[0].stamp == 0.0
    np.testing.assert_allclose(np.cov(err.T), cov, atol=0.08)
    np.testing.assert_allclose(err.mean(axis=0), 0.0, atol=0.08)
    assert cov[0, 0] == pytest.approx(0.8 ** 2)


def test_gnss_dropout_and_jump():
    gnss = Gnss(GnssConfig(), ENU, np.random.default_rng(1))
    fix = gnss.measure(3.0, 0.0, 0.0, FaultEffects(gps_dropout=True))
    assert fix.status == FIX_NONE and math.isnan(fix.latitude) and math.isnan(fix.longitude)
    assert np.isnan(fix.position_covariance).all()
    err, _ = gnss_errors(FaultEffects(gps_offset=(12.0, -8.0)), n=500)
    np.testing.assert_allclose(err[:, :2].mean(axis=0), [12.0, -8.0], atol=0.15)


def imu_run(config, effects=NO_EFFECTS, n=N, yaw=0.5, rate=0.2, accel=(0.3, -0.1)):
    imu = Imu(config, np.random.default_rng(2))
    return imu, [imu.measure(0.02 * i, yaw, rate, accel, effects) for i in range(n)]


def test_imu_white_noise_matches_reported_variances():
    cfg = ImuConfig(gyro_bias_std=0.0, gyro_bias_walk=0.0, heading_error_time_constant=0.02)
    _, samples = imu_run(cfg)
    gyro = np.array([s.angular_velocity for s in samples])
    accel = np.array([s.linear_acceleration for s in samples])
    yaw_err = wrap_angle(np.array([quaternion_to_yaw(s.orientation) for s in samples]) - 0.5)
    s0 = samples[0]
    np.testing.assert_allclose(gyro.mean(axis=0), [0, 0, 0.2], atol=0.001)
    np.testing.assert_allclose(gyro.var(axis=0), s0.angular_velocity_variance, rtol=0.1)
    np.testing.assert_allclose(accel.mean(axis=0), [0.3, -0.1, cfg.gravity], atol=0.005)
    np.testing.assert_allclose(accel.var(axis=0), s0.linear_acceleration_variance, rtol=0.1)
    # Heading error decorrelates every sample here, so its variance shows up in full.
    assert yaw_err.var() == pytest.approx(s0.orientation_variance[2], rel=0.1)
    assert yaw_err.mean() == pytest.approx(0.0, abs=0.003)
    norms = np.linalg.norm([s.orientation for s in samples], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)


def test_imu_gyro_bias_walks_and_faults_drift():
    imu, samples = imu_run(ImuConfig(gyro_std=0.0, gyro_bias_std=0.0, gyro_bias_walk=0.01),
                           n=2000, rate=0.0)
    z = np.array([s.angular_velocity[2] for s in samples])
    assert z[0] == 0.0 and z[-1] == pytest.approx(imu.gyro_bias)
    assert np.abs(z).max() > 0.01  # random walk: ~0.01 * sqrt(40 s)
    cfg = ImuConfig(gyro_std=0.0, gyro_bias_std=0.0, gyro_bias_walk=0.0, yaw_std=0.0,
                    heading_error_std=0.0, roll_pitch_std=0.0)
    _, (s,) = imu_run(cfg, FaultEffects(gyro_bias=0.05, heading_bias=0.3), n=1)
    assert s.angular_velocity[2] == pytest.approx(0.25)
    assert quaternion_to_yaw(s.orientation) == pytest.approx(0.8)


def test_sonar_noise_ranges_and_spurious_echoes():
    cfg = SonarConfig()
    sonar = Sonar(cfg, np.random.default_rng(3))
    readings = [sonar.measure(float(i), 20.0, NO_EFFECTS) for i in range(N)]
    values = np.array([r.value for r in readings])
    true = 20.0 - cfg.transducer_draft
    assert values.mean() == pytest.approx(true, abs=0.02)
    assert values.var() == pytest.approx(readings[0].variance, rel=0.1)
    assert readings[0].variance == pytest.approx((0.01 * true) ** 2 + 0.02 ** 2)
    assert sonar.measure(0.0, 0.3, NO_EFFECTS).value == -math.inf  # too close
    assert sonar.measure(0.0, -1.0, NO_EFFECTS).value == -math.inf  # aground
    assert sonar.measure(0.0, 80.0, NO_EFFECTS).value == math.inf  # out of range
    effects = FaultEffects(sonar_spurious_probability=0.3, sonar_spurious_range=(0.5, 3.0))
    values = np.array([sonar.measure(0.0, 20.0, effects).value for _ in range(N)])
    spurious = values < 5.0
    assert spurious.mean() == pytest.approx(0.3, abs=0.03)
    assert values[spurious].min() >= 0.5 and values[spurious].max() <= 3.0


def test_temperature_probe_noise():
    probe = TemperatureProbe(TemperatureProbeConfig(), np.random.default_rng(4))
    readings = [probe.measure(float(i), 17.0) for i in range(N)]
    values = np.array([r.value for r in readings])
    assert values.mean() == pytest.approx(17.0, abs=0.005)
    assert values.var() == pytest.approx(readings[0].variance, rel=0.1)


@pytest.mark.parametrize('rate,expected', [(50.0, 50), (5.0, 5), (1.0, 1), (2.0, 2),
                                           (3.0, 3), (7.0, 7)])
def test_rate_timer_counts(rate, expected):
    timer = RateTimer(rate)
    # Steps end at t = 0.02 k; count the samples over 10 s.
    count = sum(timer.due(0.02 * k) for k in range(1, 501))
    assert count == 10 * expected


def test_sensor_configs_are_validated():
    with pytest.raises(ValueError, match='rate_hz'):
        GnssConfig(rate_hz=0.0)
    with pytest.raises(ValueError, match='min_range'):
        SonarConfig(min_range=60.0)
    with pytest.raises(ValueError, match='accel_std'):
        ImuConfig(accel_std=-1.0)
