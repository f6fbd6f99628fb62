"""Health monitor (planning/health.py): diagnostic statuses -> the boat's health."""
import math

import numpy as np
import pytest

from asv_autonomy.measurements import PlanarOdometry
from asv_autonomy.planning.health import (ERROR, OK, STALE, WARN, HealthMonitor,
                                          HealthMonitorConfig, VehicleHealth)


def test_healthy_without_reports():
    assert HealthMonitor().health(0.0) == VehicleHealth((1.0, 1.0), True, False)


@pytest.mark.parametrize('name, level, health', [
    ('anomaly/thrust_left', WARN, VehicleHealth(thrust_efficiency=(0.5, 1.0))),
    ('anomaly/thrust_left', ERROR, VehicleHealth(thrust_efficiency=(0.0, 1.0))),
    ('ANOMALY/Thrust_Right', ERROR, VehicleHealth(thrust_efficiency=(1.0, 0.0))),
    ('anomaly/thrust_right', OK, VehicleHealth()),
    ('/gps_driver: GPS fix', WARN, VehicleHealth()),
    ('/gps_driver: GPS fix', ERROR, VehicleHealth(gps_ok=False)),
    ('sensors/gps', STALE, VehicleHealth(gps_ok=False)),
    ('anomaly/stuck', WARN, VehicleHealth(stuck=True)),
    ('anomaly/stuck', OK, VehicleHealth()),
    ('/mapping_node', ERROR, VehicleHealth()),                   # speaks for no part
])
def test_status_names_and_levels_map_to_parts(name, level, health):
    monitor = HealthMonitor()
    monitor.report(name, level, 10.0)
    assert monitor.health(10.5) == health


def test_the_latest_status_of_a_part_counts_and_old_ones_expire():
    monitor = HealthMonitor(HealthMonitorConfig(expiry=2.0, degraded_efficiency=0.25))
    monitor.report('anomaly/thrust_left', ERROR, 0.0)
    monitor.report('anomaly/thrust_right', WARN, 1.0)
    assert monitor.health(1.0).thrust_efficiency == (0.0, 0.25)
    assert monitor.health(2.0).thrust_efficiency == (0.0, 0.25)      # exactly expiry old
    assert monitor.health(2.5).thrust_efficiency == (1.0, 0.25)      # left expired
    monitor.report('anomaly/thrust_right', OK, 2.6)                  # recovered
    assert monitor.health(2.7) == VehicleHealth()


def test_coasting_position_means_the_gps_is_lost():
    monitor = HealthMonitor(HealthMonitorConfig(gps_lost_position_std=5.0, expiry=2.0))
    monitor.position_std(1.0, 0.0)
    assert monitor.health(0.1).gps_ok
    monitor.position_std(8.0, 1.0)
    assert not monitor.health(1.1).gps_ok
    assert monitor.health(3.5).gps_ok                  # no odometry for longer than expiry
    monitor.position_std(math.nan, 4.0)
    assert not monitor.health(4.0).gps_ok              # NaN std is not a good fix
    monitor.position_std(4.9, 5.0)
    assert monitor.health(5.0).gps_ok


def test_the_odometry_covariance_gives_the_position_std():
    monitor = HealthMonitor(HealthMonitorConfig(gps_lost_position_std=5.0))
    covariance = np.diag([1.0, 36.0, 0.1, 0.1, 0.1, 0.1])    # 6 m north 1-sigma: coasting
    monitor.odometry(PlanarOdometry(stamp=3.0, x=0.0, y=0.0, yaw=0.0, covariance=covariance))
    assert not monitor.health(3.0).gps_ok
    covariance[1, 1] = 16.0
    monitor.odometry(PlanarOdometry(stamp=4.0, x=0.0, y=0.0, yaw=0.0, covariance=covariance))
    assert monitor.health(4.0).gps_ok


def test_disabled_keys_and_custom_keys():
    monitor = HealthMonitor(HealthMonitorConfig(gps_key='', stuck_key='weeds'))
    monitor.report('sensors/gps', ERROR, 0.0)
    monitor.report('anomaly/stuck', ERROR, 0.0)
    assert monitor.health(0.0) == VehicleHealth()
    monitor.report('detector: weeds on the props', WARN, 0.0)
    assert monitor.health(0.0).stuck


@pytest.mark.parametrize('kw, match', [({'degraded_efficiency': 1.0}, 'degraded_efficiency'),
                                       ({'degraded_efficiency': 0.0}, 'degraded_efficiency'),
                                       ({'expiry': 0.0}, 'expiry'),
                                       ({'gps_lost_position_std': math.inf},
                                        'gps_lost_position_std')])
def test_config_refuses_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        HealthMonitorConfig(**kw)
