"""The EKF on the built-in simulator's own sensors: conventions (frames, signs, units,
quaternions) agree between the simulator and the filter, and the filter stays consistent."""
import numpy as np

from asv_autonomy.localization import LocalizationConfig, Localizer
from asv_autonomy.sim.simulator import SimConfig, Simulator


def run(seed: int, seconds: float = 200.0):
    sim = Simulator(SimConfig(seed=seed))
    loc = Localizer(LocalizationConfig(datum=sim.config.datum))
    errors, nees = [], []
    steps = int(seconds / sim.config.dt)
    for k in range(steps):
        # A curvy path: forward with a slowly alternating differential.
        turn = 8.0 * np.sin(2 * np.pi * k * sim.config.dt / 60.0)
        sim.command_thrust(30.0 - turn, 30.0 + turn)
        step = sim.step()
        if step.imu is not None:
            loc.imu(step.imu)
        if step.gnss is not None:
            loc.gnss(step.gnss)
        estimate = loc.estimate()
        if step.gnss is not None and estimate is not None and step.time - sim.config.start_time > 20.0:
            truth = step.odometry
            e = np.array([estimate.x - truth.x, estimate.y - truth.y])
            errors.append(e)
            nees.append(e @ np.linalg.solve(estimate.covariance[:2, :2], e))
    return np.array(errors), np.array(nees)


def test_filter_tracks_the_simulated_boat_consistently():
    errors, nees = zip(*(run(seed) for seed in range(3)))
    errors, nees = np.vstack(errors), np.concatenate(nees)
    rmse = float(np.sqrt((errors ** 2).sum(axis=1).mean()))
    assert rmse < 0.8, rmse   # GPS noise alone is 0.8 m per axis (1.13 m 2-D RMS)
    # Position NEES (2 dof): mean near 2; samples 0.2 s apart are correlated, so a loose band.
    assert 1.0 < nees.mean() < 4.0, nees.mean()
