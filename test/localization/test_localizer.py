"""Localizer on simulated truth with known noise: accuracy, NEES consistency, outages,
gating and refused inputs.

The truth is an analytic planar trajectory with turns (u, v, r smooth functions of time);
the IMU (50 Hz) and GNSS (5 Hz) are generated from it with exactly the noise the filter is
told about, so the normalised estimation error squared (NEES) must follow chi2.
"""
from dataclasses import dataclass, replace

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.transform import Rotation

from asv_autonomy.geodesy import Datum, LocalENU
from asv_autonomy.localization import LocalizationConfig, Localizer
from asv_autonomy.measurements import (FIX, FIX_NONE, GnssFix, ImuSample, InvalidInput,
                                       wrap_angle, yaw_to_quaternion)

G = 9.81
IMU_RATE, GNSS_RATE = 50, 5
GNSS_SIGMA = 0.8
HEADING_SIGMA = 0.01
CONFIG = LocalizationConfig(datum=Datum(59.4, 10.5, 30.0), heading_sigma=HEADING_SIGMA,
                            heading_sigma_min=HEADING_SIGMA)


def truth_rates(t):
    """Body velocities [m/s], yaw rate [rad/s], their time derivatives and yaw [rad]."""
    w1, w2, w3, w4, w5 = 2 * np.pi / 60, 2 * np.pi / 45, 2 * np.pi / 40, 2 * np.pi / 17, 1.0
    u, du = 1.5 + 0.4 * np.sin(w1 * t), 0.4 * w1 * np.cos(w1 * t)
    v, dv = 0.15 * np.sin(w2 * t), 0.15 * w2 * np.cos(w2 * t)
    r = 0.12 * np.sin(w3 * t) + 0.05 * np.sin(w4 * t + w5)
    yaw = 2.6 + 0.12 / w3 * (1 - np.cos(w3 * t)) + 0.05 / w4 * (np.cos(w5) - np.cos(w4 * t + w5))
    return u, v, r, du, dv, yaw


@dataclass
class Run:
    times: np.ndarray          # (K,) [s] IMU stamps
    truth: np.ndarray          # (K, 6) x, y, yaw, u, v, r
    gyro_bias: np.ndarray      # (K,)
    events: list               # time-ordered ImuSample / GnssFix


def simulate(seed, duration, config=CONFIG, outage=(np.inf, np.inf), gnss_latency=0.0):
    """IMU + GNSS records of the analytic trajectory; GNSS fixes inside ``outage`` are
    FIX_NONE, and each fix is delivered ``gnss_latency`` [s] after its stamp."""
    rng = np.random.default_rng(seed)
    fine = 10
    tf = np.arange(int(duration * IMU_RATE * fine) + 1) / (IMU_RATE * fine)
    u, v, r, du, dv, yaw = truth_rates(tf)
    ve = np.cos(yaw) * u - np.sin(yaw) * v
    vn = np.sin(yaw) * u + np.cos(yaw) * v
    dtf = tf[1] - tf[0]
    x = np.concatenate([[0.0], np.cumsum(0.5 * (ve[1:] + ve[:-1]) * dtf)]) + 40.0
    y = np.concatenate([[0.0], np.cumsum(0.5 * (vn[1:] + vn[:-1]) * dtf)]) - 25.0
    k = slice(None, None, fine)
    t = tf[k]
    truth = np.stack([x[k], y[k], yaw[k], u[k], v[k], r[k]], axis=1)
    n = len(t)
    dt = 1.0 / IMU_RATE
    # Biases drawn from the filter's prior, then random walks with its densities.
    bg = (rng.normal(0, config.init_gyro_bias_sigma)
          + np.cumsum(rng.normal(0, config.gyro_bias_walk * np.sqrt(dt), n)))
    ba = (rng.normal(0, config.init_accel_bias_sigma, 2)
          + np.cumsum(rng.normal(0, config.accel_bias_walk * np.sqrt(dt), (n, 2)), axis=0))
    gyro = r[k] + bg + rng.normal(0, config.gyro_noise_density * np.sqrt(IMU_RATE), n)
    acc = np.stack([du[k] - r[k] * v[k], dv[k] + r[k] * u[k]], axis=1) + ba
    acc += rng.normal(0, config.accel_noise_density * np.sqrt(IMU_RATE), (n, 2))
    heading = yaw[k] + rng.normal(0, HEADING_SIGMA, n)

    imu = [(t[i], ImuSample(stamp=t[i], orientation=yaw_to_quaternion(heading[i]),
                            angular_velocity=np.array([0.0, 0.0, gyro[i]]),
                            linear_acceleration=np.array([acc[i, 0], acc[i, 1], G]),
                            orientation_variance=np.full(3, HEADING_SIGMA ** 2)))
           for i in range(n)]
    step = IMU_RATE // GNSS_RATE
    gi = np.arange(step, n, step)
    noisy = truth[gi, :2] + rng.normal(0, GNSS_SIGMA, (len(gi), 2))
    lat, lon, alt = LocalENU(config.datum).to_geodetic(noisy[:, 0], noisy[:, 1], 0.5)
    cov = np.diag([GNSS_SIGMA ** 2, GNSS_SIGMA ** 2, 4.0])
    gnss = []
    for j, i in enumerate(gi):
        blocked = outage[0] <= t[i] < outage[1]
        gnss.append((t[i] + gnss_latency + 1e-6, GnssFix(
            stamp=t[i], latitude=np.nan if blocked else lat[j],
            longitude=np.nan if blocked else lon[j], altitude=alt[j],
            status=FIX_NONE if blocked else FIX, position_covariance=cov)))
    events = [e for _, e in sorted(imu + gnss, key=lambda item: item[0])]
    return Run(t, truth, bg, events)


def run_filter(run, config=CONFIG, every=GNSS_RATE):
    """Feed the events; sample (time index, estimate) ``every`` IMU samples after a fix."""
    loc = Localizer(config)
    out = []
    index = {round(t * IMU_RATE): i for i, t in enumerate(run.times)}
    for event in run.events:
        if isinstance(event, ImuSample):
            loc.imu(event)
            i = index[round(event.stamp * IMU_RATE)]
            est = loc.estimate()
            if est is not None and i % every == 0:
                out.append((i, est, loc.status()))
        else:
            loc.gnss(event)
    return loc, out


def errors(run, samples):
    """(N, 6) estimate - truth of x, y, yaw, u, v, r and the (N, 6, 6) covariances."""
    err = np.array([[e.x, e.y, e.yaw, e.u, e.v, e.r] for _, e, _ in samples])
    err -= run.truth[[i for i, _, _ in samples]]
    err[:, 2] = wrap_angle(err[:, 2])
    return err, np.array([e.covariance for _, e, _ in samples])


def nees(err, cov, dims):
    e = err[:, dims]
    c = cov[:, dims][:, :, dims]
    return np.einsum('ni,ni->n', e, np.linalg.solve(c, e[..., None])[..., 0])


def fix_at(config, stamp, x, y, sigma=GNSS_SIGMA, status=FIX):
    lat, lon, alt = LocalENU(config.datum).to_geodetic(x, y, 0.0)
    return GnssFix(stamp=stamp, latitude=float(lat), longitude=float(lon), altitude=float(alt),
                   status=status, position_covariance=np.diag([sigma ** 2, sigma ** 2, 4.0]))


def imu_at(stamp, yaw=0.0, gyro=0.0, accel=(0.0, 0.0)):
    return ImuSample(stamp=stamp, orientation=yaw_to_quaternion(yaw),
                     angular_velocity=np.array([0.0, 0.0, gyro]),
                     linear_acceleration=np.array([accel[0], accel[1], G]),
                     orientation_variance=np.full(3, HEADING_SIGMA ** 2))


def initialised(config=CONFIG, x=10.0, y=-5.0, yaw=0.5):
    loc = Localizer(config)
    loc.imu(imu_at(0.0, yaw))
    assert loc.gnss(fix_at(config, 0.0, x, y))
    for k in range(1, 51):  # settle 1 s at rest
        loc.imu(imu_at(k / IMU_RATE, yaw))
        if k % 10 == 0:
            loc.gnss(fix_at(config, k / IMU_RATE, x, y))
    return loc


def test_accuracy_and_nees_consistency():
    seeds, burn_in, spacing = range(6), 10.0, 5.0   # spacing [s] makes samples ~independent
    pos_nees, full_nees, pos_err, yaw_err, bias_err = [], [], [], [], []
    for seed in seeds:
        run = simulate(seed, 120.0)
        loc, samples = run_filter(run)
        err, cov = errors(run, samples)
        assert (np.linalg.eigvalsh(cov) > 0).all(), 'covariance must stay positive definite'
        t = run.times[[i for i, _, _ in samples]]
        keep = t >= burn_in
        pos_err.append(err[keep, :2])
        yaw_err.append(err[keep, 2])
        sparse = keep & (np.round(t / spacing, 6) % 1 == 0)
        pos_nees.append(nees(err[sparse], cov[sparse], [0, 1]))
        full_nees.append(nees(err[sparse], cov[sparse], list(range(6))))
        bias_err.append(loc.status().gyro_bias - run.gyro_bias[-1])
        assert loc.status().gnss_outliers == 0
    rmse = np.sqrt(np.mean(np.concatenate(pos_err) ** 2) * 2)
    assert rmse < 0.5, f'position RMSE {rmse:.3f} m (GNSS noise: {GNSS_SIGMA * 2**0.5:.2f} m)'
    yaw_rmse = np.degrees(np.sqrt(np.mean(np.concatenate(yaw_err) ** 2)))
    assert yaw_rmse < 0.3, f'heading RMSE {yaw_rmse:.3f} deg'
    # Gyro biases are drawn with sigma 0.01 rad/s; the filter recovers them to < 1e-3.
    assert np.abs(bias_err).max() < 1e-3, bias_err
    for values, dof in ((np.concatenate(pos_nees), 2), (np.concatenate(full_nees), 6)):
        lo, hi = stats.chi2.ppf([0.0005, 0.9995], dof * len(values)) / len(values)
        assert lo < values.mean() < hi, \
            f'{dof}-dof NEES {values.mean():.2f} outside [{lo:.2f}, {hi:.2f}]'


def test_late_gnss_is_fused_with_its_lag():
    run = simulate(7, 60.0, gnss_latency=0.1)
    loc, samples = run_filter(run)
    err, cov = errors(run, samples)
    keep = run.times[[i for i, _, _ in samples]] >= 10.0
    rmse = np.sqrt(np.mean(err[keep, :2] ** 2) * 2)
    assert rmse < 0.5
    assert 1.0 < nees(err[keep], cov[keep], [0, 1]).mean() < 3.0
    assert loc.status().gnss_fused == sum(isinstance(e, GnssFix) for e in run.events)


def test_gnss_outage_dead_reckons_and_reconverges():
    outage = (40.0, 60.0)
    run = simulate(3, 80.0, outage=outage)
    loc, samples = run_filter(run)
    err, cov = errors(run, samples)
    t = run.times[[i for i, _, _ in samples]]
    dist = np.hypot(err[:, 0], err[:, 1])
    std = np.sqrt(cov[:, 0, 0] + cov[:, 1, 1])
    during = (t > outage[0] + 2) & (t < outage[1])
    assert all(s.dead_reckoning for (_, _, s), d in zip(samples, during) if d)
    assert np.all(np.diff(std[during]) > 0), 'position covariance must grow without GNSS'
    assert std[during][-1] > 4 * std[t < outage[0]][-1]
    assert dist[during].max() < 10.0
    assert (dist[during] < 3.5 * std[during]).all(), 'error must stay within the covariance'
    after = t > outage[1] + 10
    assert dist[after].max() < 1.5 and not samples[-1][2].dead_reckoning
    assert loc.status().gnss_no_fix == 20 * GNSS_RATE and loc.status().gnss_outliers == 0


def test_imu_mount_yaw_offset_and_tilt_are_compensated():
    offset, roll = np.pi / 2, np.radians(8.0)
    config = replace(CONFIG, imu_yaw_offset=offset)
    run = simulate(11, 40.0, config=config)
    # Re-express every IMU sample in an imu_link yawed by `offset` and rolled by `roll`.
    cz, sz, cr, sr = np.cos(offset), np.sin(offset), np.cos(roll), np.sin(roll)
    mount = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    events = []
    for e in run.events:
        if isinstance(e, ImuSample):
            yaw = 2 * np.arctan2(e.orientation[2], e.orientation[3])
            body = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0],
                             [0, 0, 1]])
            e = replace(e, orientation=Rotation.from_matrix(body @ mount).as_quat(),
                        angular_velocity=mount.T @ e.angular_velocity,
                        linear_acceleration=mount.T @ e.linear_acceleration)
        events.append(e)
    loc, samples = run_filter(replace(run, events=events), config)
    err, _ = errors(run, samples)
    keep = run.times[[i for i, _, _ in samples]] >= 10.0
    assert np.sqrt(np.mean(err[keep, :2] ** 2) * 2) < 0.5
    assert np.degrees(np.abs(err[keep, 2]).max()) < 1.0


def test_gate_rejects_a_50_m_jump_and_resets_when_gnss_insists():
    loc = initialised()
    before = loc.estimate()
    with pytest.raises(InvalidInput) as info:
        loc.gnss(fix_at(CONFIG, 1.0, 60.0, -5.0))
    assert info.value.reason == 'outlier'
    after = loc.estimate()
    assert (after.x, after.y) == (before.x, before.y) and loc.status().gnss_outliers == 1
    # GNSS keeps saying the boat is 50 m east: after max_consecutive_outliers the filter
    # re-initialises there instead of rejecting GNSS forever.
    stamp = 1.0
    for k in range(CONFIG.max_consecutive_outliers - 2):
        stamp += 0.2
        loc.imu(imu_at(stamp, 0.5))
        with pytest.raises(InvalidInput):
            loc.gnss(fix_at(CONFIG, stamp, 60.0, -5.0))
    loc.imu(imu_at(stamp + 0.2, 0.5))
    assert loc.gnss(fix_at(CONFIG, stamp + 0.2, 60.0, -5.0))
    status = loc.status()
    assert status.resets == 1 and status.gnss_outliers == CONFIG.max_consecutive_outliers
    assert abs(loc.estimate().x - 60.0) < 1e-6


def test_refused_inputs_raise_with_reason_and_leave_the_filter_unchanged():
    loc = initialised()
    before = loc.estimate()
    cases = [
        (loc.imu, replace(imu_at(1.1), linear_acceleration=np.array([np.nan, 0.0, G])), 'nan'),
        (loc.imu, replace(imu_at(1.1), orientation=np.array([0.0, 0.0, np.inf, 1.0])), 'nan'),
        (loc.imu, replace(imu_at(1.1), stamp=np.nan), 'nan'),
        (loc.imu, replace(imu_at(1.1), orientation=np.zeros(4)), 'out_of_range'),
        (loc.imu, replace(imu_at(1.1), angular_velocity=np.zeros(2)), 'out_of_range'),
        (loc.imu, imu_at(-0.5), 'out_of_order'),
        (loc.gnss, fix_at(CONFIG, -0.5, 10.0, -5.0), 'out_of_order'),
        (loc.gnss, replace(fix_at(CONFIG, 1.1, 10.0, -5.0), latitude=np.inf), 'nan'),
        (loc.gnss, replace(fix_at(CONFIG, 1.1, 10.0, -5.0), stamp=np.nan), 'nan'),
        (loc.gnss, replace(fix_at(CONFIG, 1.1, 10.0, -5.0), latitude=95.0), 'out_of_range'),
        (loc.gnss, replace(fix_at(CONFIG, 1.1, 10.0, -5.0), status=7), 'out_of_range'),
    ]
    for verb, record, reason in cases:
        with pytest.raises(InvalidInput) as info:
            verb(record)
        assert info.value.reason == reason, (record, info.value)
    after = loc.estimate()
    assert (after.stamp, after.x, after.y, after.yaw) == (before.stamp, before.x, before.y,
                                                          before.yaw)
    np.testing.assert_array_equal(after.covariance, before.covariance)
    # A sample slightly late (within late_tolerance) is still accepted.
    loc.imu(imu_at(1.0 - CONFIG.late_tolerance / 2, 0.5))
    # No fix / NaN position / too large covariance: not fused, counted, not an error.
    assert not loc.gnss(fix_at(CONFIG, 1.1, np.nan, 0.0, status=FIX_NONE))
    assert not loc.gnss(replace(fix_at(CONFIG, 1.1, 10.0, -5.0), latitude=np.nan))
    assert not loc.gnss(fix_at(CONFIG, 1.1, 10.0, -5.0, sigma=CONFIG.gnss_sigma_max * 2))
    status = loc.status()
    assert (status.gnss_no_fix, status.gnss_poor, status.gnss_outliers) == (2, 1, 0)


def test_initialisation_needs_a_fix_and_an_imu_heading():
    config = replace(CONFIG, gnss_lever_arm=(1.0, 0.0))
    loc = Localizer(config)
    assert loc.estimate() is None
    assert not loc.gnss(fix_at(config, 0.0, 10.0, 20.0))   # waits for a heading
    assert loc.estimate() is None and not loc.status().initialised
    loc.imu(imu_at(0.1, np.pi / 2))
    est = loc.estimate()
    # The antenna is 1 m ahead of base_link, the boat faces north.
    assert est.stamp == 0.1 and (est.x, est.y) == pytest.approx((10.0, 19.0))
    assert est.yaw == pytest.approx(np.pi / 2)
    # Fix position covariance, widened by the 0.1 s skew at init_speed_sigma.
    skew_var = (config.init_speed_sigma * 0.1) ** 2
    assert est.covariance[0, 0] == pytest.approx(GNSS_SIGMA ** 2 + skew_var)
    # A fix without covariance uses gnss_sigma; an optimistic one is floored.
    for reported, expected in ((np.full((3, 3), np.nan), CONFIG.gnss_sigma),
                               (np.diag([1e-4, 1e-4, 1e-4]), CONFIG.gnss_sigma_min)):
        loc = Localizer(CONFIG)
        loc.imu(imu_at(0.0))
        loc.gnss(replace(fix_at(CONFIG, 0.0, 0.0, 0.0), position_covariance=reported))
        assert loc.estimate().covariance[0, 0] == pytest.approx(expected ** 2)
    # An IMU heading too far in time from the fix does not initialise.
    loc = Localizer(CONFIG)
    loc.imu(imu_at(0.0))
    assert not loc.gnss(fix_at(CONFIG, CONFIG.init_max_skew + 0.1, 0.0, 0.0))


def test_too_long_dead_reckoning_drops_the_estimate_until_the_next_fix():
    config = replace(CONFIG, max_dead_reckoning=5.0)
    loc = initialised(config)
    k = 51
    while loc.estimate() is not None:
        loc.imu(imu_at(k / IMU_RATE, 0.5))
        k += 1
    assert k / IMU_RATE == pytest.approx(1.0 + config.max_dead_reckoning, abs=0.05)
    assert loc.status().resets == 1
    assert loc.gnss(fix_at(config, k / IMU_RATE, 3.0, 4.0))
    assert (loc.estimate().x, loc.estimate().y) == pytest.approx((3.0, 4.0))


def test_imu_gap_holds_position_instead_of_extrapolating_the_last_turn():
    loc = initialised()
    loc.imu(imu_at(1.02, 0.5, gyro=0.3, accel=(1.0, 0.0)))
    # The IMU falls silent for 3 s; a fix arrives: the filter stops turning/accelerating.
    loc.gnss(fix_at(CONFIG, 4.0, 10.0, -5.0))
    est, status = loc.estimate(), loc.status()
    assert status.imu_stale and est.r == pytest.approx(0.0, abs=1e-3)
    assert abs(wrap_angle(est.yaw - 0.5)) < 0.05 and np.hypot(est.x - 10, est.y + 5) < 0.5


@pytest.mark.parametrize('change', [dict(gnss_sigma_min=0.0), dict(gnss_sigma=20.0),
                                    dict(gnss_lever_arm=(1.0,)), dict(late_tolerance=-1.0),
                                    dict(max_consecutive_outliers=0),
                                    dict(accel_noise_density=float('nan')),
                                    dict(max_dead_reckoning=1.0)])
def test_config_is_validated(change):
    with pytest.raises(ValueError):
        replace(CONFIG, **change)
