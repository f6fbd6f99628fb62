"""Planar inertial EKF math: state layout, IMU-driven propagation, Joseph-form update.

State (8,) = ``[x, y, yaw, u, v, b_g, b_ax, b_ay]``:

* ``x, y`` [m] position of ``base_link`` in ``map`` (ENU), ``yaw`` [rad] heading (from east, CCW);
* ``u, v`` [m/s] velocity over ground in the body frame (FLU);
* ``b_g`` [rad/s] gyro z bias, ``b_ax, b_ay`` [m/s^2] bias of the levelled horizontal
  specific force (absorbs accelerometer bias and the gravity leak of a small tilt error).

Why this layout: the IMU is the process *input* (a strapdown mechanisation), so the yaw
rate is not a state but ``r = gyro_z - b_g``; no hand-tuned vessel-dynamics model is needed
and the prediction is as good as the IMU. GNSS observes position, hence velocity and (while
the boat turns) the accelerometer biases; the IMU heading observes the gyro bias.
"""
from __future__ import annotations

import numpy as np

from ..measurements import wrap_angle

X, Y, YAW, U, V, BG, BAX, BAY = range(8)
STATE_SIZE = 8


def propagate(x: np.ndarray, P: np.ndarray, gyro_z: float, accel: np.ndarray, dt: float,
              noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Euler step of the planar strapdown kinematics and its covariance.

    ``dyaw = r``, ``d(x, y) = R(yaw) (u, v)``, ``du = a_x + r v``, ``dv = a_y - r u`` with
    ``r = gyro_z - b_g`` and ``a = accel - b_a``; biases are random walks.

    Args:
        x: (8,) state, P: (8, 8) covariance.
        gyro_z: [rad/s] measured yaw rate.
        accel: (2,) [m/s^2] measured specific force, levelled, in the heading frame.
        dt: [s] step (small: the caller sub-steps long gaps).
        noise: (4,) continuous white-noise spectral densities squared: gyro [rad^2/s],
            accelerometer [m^2/s^3], gyro bias walk [rad^2/s^3], accel bias walk [m^2/s^5].

    Returns:
        (x, P) after the step.
    """
    yaw, u, v = x[YAW], x[U], x[V]
    r = gyro_z - x[BG]
    c, s = np.cos(yaw), np.sin(yaw)
    out = x.copy()
    out[X] += (c * u - s * v) * dt
    out[Y] += (s * u + c * v) * dt
    out[YAW] = wrap_angle(yaw + r * dt)
    out[U] += (accel[0] - x[BAX] + r * v) * dt
    out[V] += (accel[1] - x[BAY] - r * u) * dt

    F = np.eye(STATE_SIZE)
    F[X, YAW], F[X, U], F[X, V] = (-s * u - c * v) * dt, c * dt, -s * dt
    F[Y, YAW], F[Y, U], F[Y, V] = (c * u - s * v) * dt, s * dt, c * dt
    F[YAW, BG] = -dt
    F[U, V], F[U, BG], F[U, BAX] = r * dt, -v * dt, -dt
    F[V, U], F[V, BG], F[V, BAY] = -r * dt, u * dt, -dt
    # Noise inputs: gyro (drives yaw and the Coriolis terms), accel x, accel y, bias walks.
    G = np.zeros((STATE_SIZE, 6))
    G[YAW, 0], G[U, 0], G[V, 0] = 1.0, v, -u
    G[U, 1] = G[V, 2] = G[BG, 3] = G[BAX, 4] = G[BAY, 5] = 1.0
    q = np.array([noise[0], noise[1], noise[1], noise[2], noise[3], noise[3]]) * dt
    P = F @ P @ F.T + (G * q) @ G.T
    return out, 0.5 * (P + P.T)


def update(x: np.ndarray, P: np.ndarray, innovation: np.ndarray, H: np.ndarray,
           R: np.ndarray, gate: float = np.inf) -> tuple[np.ndarray, np.ndarray, float]:
    """Gated EKF measurement update in Joseph form (keeps P symmetric positive definite).

    Args:
        x: (8,) state, P: (8, 8) covariance.
        innovation: (m,) measurement minus prediction (angles already wrapped).
        H: (m, 8) measurement Jacobian. R: (m, m) measurement covariance.
        gate: Mahalanobis (NIS) threshold; above it the state is returned unchanged.

    Returns:
        (x, P, nis): updated (or untouched, when gated out) state and covariance, and the
        normalised innovation squared ``y^T S^-1 y``.
    """
    S = H @ P @ H.T + R
    PHt = P @ H.T
    nis = float(innovation @ np.linalg.solve(S, innovation))
    if not nis <= gate:
        return x, P, nis
    K = np.linalg.solve(S, PHt.T).T
    out = x + K @ innovation
    out[YAW] = wrap_angle(out[YAW])
    A = np.eye(STATE_SIZE) - K @ H
    P = A @ P @ A.T + K @ R @ K.T
    return out, 0.5 * (P + P.T), nis
