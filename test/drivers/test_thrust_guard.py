import math

import numpy as np
import pytest

from asv_autonomy.drivers.thrust_guard import ThrustGuard, ThrustGuardConfig
from asv_autonomy.measurements import InvalidInput


def test_fresh_commands_pass_saturated():
    guard = ThrustGuard(ThrustGuardConfig(max_forward=45.0, max_reverse=35.0))
    guard.command(0, 100.0, now=10.0)
    guard.command(1, -100.0, now=10.0)
    out = guard.output(10.1)
    np.testing.assert_allclose(out.thrust, [45.0, -35.0])
    assert not out.stale.any() and not out.estop


def test_each_thruster_times_out_on_its_own():
    guard = ThrustGuard(ThrustGuardConfig(timeout=0.5))
    guard.command(0, 20.0, now=0.0)
    guard.command(1, 20.0, now=0.4)
    out = guard.output(0.7)
    np.testing.assert_allclose(out.thrust, [0.0, 20.0])
    np.testing.assert_array_equal(out.stale, [True, False])


def test_nothing_before_the_first_command():
    assert not ThrustGuard().output(0.0).thrust.any()


def test_estop_holds_zero_and_release_needs_fresh_commands():
    guard = ThrustGuard()
    guard.command(0, 20.0, now=0.0)
    guard.set_estop(True)
    guard.command(1, 20.0, now=0.1)     # commands during the stop are not applied
    assert not guard.output(0.1).thrust.any() and guard.output(0.1).estop
    guard.set_estop(False)
    assert not guard.output(0.2).thrust.any()
    guard.command(0, 10.0, now=0.3)
    np.testing.assert_allclose(guard.output(0.3).thrust, [10.0, 0.0])


@pytest.mark.parametrize('index, thrust, reason', [(0, math.nan, 'nan'), (0, math.inf, 'nan'),
                                                   (2, 1.0, 'out_of_range')])
def test_bad_commands_are_refused_and_change_nothing(index, thrust, reason):
    guard = ThrustGuard()
    guard.command(0, 5.0, now=0.0)
    with pytest.raises(InvalidInput) as error:
        guard.command(index, thrust, now=0.1)
    assert error.value.reason == reason
    np.testing.assert_allclose(guard.output(0.1).thrust, [5.0, 0.0])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match='timeout'):
        ThrustGuardConfig(timeout=0.0)
