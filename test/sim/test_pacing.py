import math

import pytest

from asv_autonomy.sim.pacing import StackPacer


def test_nothing_observed_never_holds():
    pacer = StackPacer(lead=0.3, timeout=1.0)
    assert pacer.limit(0.0) == math.inf
    assert pacer.allows(1e6, 0.0) and pacer.held == 0


def test_clock_is_held_within_lead_of_the_slowest_signal():
    pacer = StackPacer(lead=0.3, timeout=1.0)
    pacer.observe('odometry', 10.0, wall_time=0.0)
    pacer.observe('thrust', 9.5, wall_time=0.0)
    assert pacer.limit(0.1) == pytest.approx(9.8)
    assert pacer.allows(9.8, 0.1)
    assert not pacer.allows(9.82, 0.1)
    assert pacer.held == 1
    pacer.observe('thrust', 10.0, wall_time=0.2)        # the controller caught up
    assert pacer.allows(10.25, 0.2)


def test_a_stopped_signal_stops_pacing_after_the_timeout_and_resumes():
    pacer = StackPacer(lead=0.3, timeout=1.0)
    pacer.observe('odometry', 5.0, wall_time=0.0)
    pacer.observe('thrust', 5.0, wall_time=0.0)
    pacer.observe('odometry', 20.0, wall_time=1.5)
    # The controller stopped (e-stop, finished): its last command no longer holds.
    assert pacer.active(1.5) == ['odometry']
    assert pacer.limit(1.5) == pytest.approx(20.3)
    pacer.observe('thrust', 20.1, wall_time=1.6)
    assert set(pacer.active(1.6)) == {'odometry', 'thrust'}


def test_old_or_non_finite_observations_do_not_move_a_signal_back():
    pacer = StackPacer(lead=0.5, timeout=1.0)
    pacer.observe('odometry', 8.0, wall_time=0.0)
    pacer.observe('odometry', 7.0, wall_time=0.5)
    pacer.observe('odometry', math.nan, wall_time=0.5)
    assert pacer.limit(0.5) == pytest.approx(8.5)
    # An out-of-order stamp does not refresh the signal either.
    assert pacer.active(1.2) == []


@pytest.mark.parametrize('lead, timeout', [(0.0, 1.0), (-1.0, 1.0), (0.3, 0.0),
                                           (math.nan, 1.0), (0.3, math.inf)])
def test_bad_parameters_are_refused(lead, timeout):
    with pytest.raises(ValueError):
        StackPacer(lead, timeout)
