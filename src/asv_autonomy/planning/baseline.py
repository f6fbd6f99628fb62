"""Baseline controller: lawnmower survey + line-of-sight guidance + PID/PI control.

This is the classical survey autopilot that the learned planner has to beat: a
boustrophedon ("lawnmower") pattern over a convex survey polygon, followed with
lookahead-based line-of-sight (LOS) guidance (Fossen 2011, ch. 10.3) with crab-angle
compensation from the measured velocity over ground, a PID heading controller and a PI
speed controller, and an allocation of (surge force, yaw moment) onto two stern thrusters
that saturates with priority to the yaw moment. It knows nothing about currents, wind,
the map uncertainty or thruster faults beyond what feedback corrects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..measurements import InvalidInput, PlanarOdometry, wrap_angle
from .vessel import VesselParams


@dataclass(frozen=True)
class BaselineConfig:
    """Survey pattern, guidance and control gains.

    Args:
        survey_polygon: [m] convex survey area in ``map``, flat (x0, y0, x1, y1, ...).
        line_spacing: [m] distance between survey lines (the sonar swath).
        inset: [m] margin kept between the survey lines and the polygon edges.
        speed: [m/s] cruise surge speed over ground.
        lookahead: [m] LOS lookahead distance (larger: smoother, slower convergence).
        acceptance_radius: [m] a waypoint (or goal) counts as reached within this distance.
        slowdown_distance: [m] goto mode: the speed ramps down linearly within this
            distance of the goal.
        hold_radius: [m] goto mode: holding at the goal (zero thrust) until the boat drifts
            farther than this, then it comes back.
        max_crab: [rad] bound on the crab-angle (drift) compensation.
        crab_min_speed: [m/s] below this speed the drift angle is too noisy to use.
        heading_kp: [N m/rad], heading_ki: [N m/(rad s)], heading_kd: [N m s/rad] yaw
            moment PID on the heading error (D acts on the measured yaw rate).
        speed_kp: [N s/m], speed_ki: [N/m] surge force PI on the speed error.
        max_dt: [s] longer gaps between odometry messages do not integrate.
    """

    survey_polygon: tuple[float, ...] = (-80.0, -60.0, 80.0, -60.0, 80.0, 60.0, -80.0, 60.0)
    line_spacing: float = 20.0
    inset: float = 5.0
    speed: float = 1.2
    lookahead: float = 8.0
    acceptance_radius: float = 3.0
    slowdown_distance: float = 10.0
    hold_radius: float = 6.0
    max_crab: float = 0.6
    crab_min_speed: float = 0.3
    heading_kp: float = 12.0
    heading_ki: float = 1.0
    heading_kd: float = 10.0
    speed_kp: float = 40.0
    speed_ki: float = 20.0
    max_dt: float = 1.0

    def __post_init__(self):
        for name in ('line_spacing', 'speed', 'lookahead', 'acceptance_radius',
                     'slowdown_distance', 'max_dt'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite positive number, got {value}')
        for name in ('inset', 'max_crab', 'crab_min_speed', 'heading_kp', 'heading_ki',
                     'heading_kd', 'speed_kp', 'speed_ki'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be finite and >= 0, got {value}')
        if not self.hold_radius > self.acceptance_radius:
            raise ValueError('hold_radius must be larger than acceptance_radius')
        _polygon(self.survey_polygon)


@dataclass(frozen=True)
class BaselineCommand:
    """One control output.

    Args:
        thrust_left, thrust_right: [N] thruster commands (VRX convention, + pushes forward).
        target: [m] (x, y) the waypoint (survey) or goal (goto) being steered to.
        waypoint_index: index of ``target`` in ``BaselineController.path`` (0 in goto mode).
        mode: 'survey' or 'goto'.
        done: survey finished (or goal reached and holding); thrust is zero.
        cross_track_error: [m] signed distance of the boat from the followed segment,
            positive when the boat is left of it.
    """

    thrust_left: float
    thrust_right: float
    target: tuple[float, float]
    waypoint_index: int
    mode: str
    done: bool
    cross_track_error: float


class BaselineController:
    """Lawnmower survey (or goto) autopilot for a twin-thruster boat; call `plan` at the
    control rate with the latest odometry."""

    def __init__(self, config: BaselineConfig, vessel: VesselParams):
        self.config = config
        self.vessel = vessel
        self._path = lawnmower(_polygon(config.survey_polygon), config.line_spacing,
                               config.inset)
        self._goal: np.ndarray | None = None
        self._index = 0
        self._start: np.ndarray | None = None   # start of the segment towards the target
        self._holding = False
        self._last_stamp = math.nan
        self._heading_integral = 0.0   # [rad s]
        self._speed_integral = 0.0     # [m]

    @property
    def path(self) -> np.ndarray:
        """(N, 2) [m] survey waypoints in ``map``, in visiting order."""
        return self._path.copy()

    def set_goal(self, x: float, y: float) -> None:
        """Leave the survey and drive to (x, y) [m] in ``map``, then hold there."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f'goal must be finite, got ({x}, {y})')
        self._goal = np.array([x, y], float)
        self._start = None
        self._holding = False

    def plan(self, odom: PlanarOdometry) -> BaselineCommand:
        """Thrust commands for the current odometry.

        Raises:
            InvalidInput: 'nan' when the odometry has a non-finite field.
        """
        cfg = self.config
        if not np.isfinite([odom.stamp, odom.x, odom.y, odom.yaw, odom.u, odom.v,
                            odom.r]).all():
            raise InvalidInput('nan', f'non-finite odometry {odom}')
        dt = odom.stamp - self._last_stamp
        dt = dt if 0.0 < dt <= cfg.max_dt else 0.0
        self._last_stamp = odom.stamp
        pos = np.array([odom.x, odom.y])
        if self._start is None:
            self._start = pos
        target, speed, done = self._guidance_target(pos)
        index = 0 if self._goal is not None else min(self._index, len(self._path) - 1)
        mode = 'goto' if self._goal is not None else 'survey'
        target_xy = (float(target[0]), float(target[1]))
        if done:
            self._heading_integral = self._speed_integral = 0.0
            return BaselineCommand(0.0, 0.0, target_xy, index, mode, True, 0.0)

        # LOS: steer towards the point `lookahead` ahead of the boat's projection on the
        # segment; course = heading + drift angle, so aim the heading off by the drift.
        seg = target - self._start
        length = float(np.hypot(*seg))
        along = seg / length if length > 1e-6 else np.array([math.cos(odom.yaw),
                                                              math.sin(odom.yaw)])
        rel = pos - self._start
        cross = float(along[0] * rel[1] - along[1] * rel[0])
        course = math.atan2(along[1], along[0]) + math.atan2(-cross, cfg.lookahead)
        crab = 0.0
        if odom.u > cfg.crab_min_speed:
            crab = float(np.clip(math.atan2(odom.v, odom.u), -cfg.max_crab, cfg.max_crab))
        heading_error = float(wrap_angle(course - crab - odom.yaw))
        # Turn before speeding up: no forward speed while facing away from the course.
        speed_ref = speed * max(0.0, math.cos(heading_error))

        surge_max = 2.0 * self.vessel.max_thrust_forward
        yaw_max = self.vessel.thruster_y * (self.vessel.max_thrust_forward
                                            + self.vessel.max_thrust_reverse)
        speed_error = speed_ref - odom.u
        self._speed_integral = _clamp_integral(self._speed_integral + speed_error * dt,
                                               cfg.speed_ki, surge_max)
        self._heading_integral = _clamp_integral(self._heading_integral + heading_error * dt,
                                                 cfg.heading_ki, yaw_max)
        surge = cfg.speed_kp * speed_error + cfg.speed_ki * self._speed_integral
        moment = (cfg.heading_kp * heading_error + cfg.heading_ki * self._heading_integral
                  - cfg.heading_kd * odom.r)
        left, right = allocate(surge, moment, self.vessel)
        return BaselineCommand(left, right, target_xy, index, mode, False, cross)

    def _guidance_target(self, pos: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """(target point, speed reference [m/s], done) after advancing the waypoint logic."""
        cfg = self.config
        if self._goal is not None:
            distance = float(np.hypot(*(self._goal - pos)))
            if self._holding and distance > cfg.hold_radius:
                self._holding, self._start = False, pos   # drifted off: come back
            elif not self._holding and distance < cfg.acceptance_radius:
                self._holding = True
            speed = cfg.speed * min(1.0, distance / cfg.slowdown_distance)
            return self._goal, speed, self._holding
        while self._index < len(self._path):
            target = self._path[self._index]
            seg = target - self._start
            length = float(np.hypot(*seg))
            # Reached: close to the waypoint, or past the end of the segment.
            passed = length > 1e-6 and float(seg @ (pos - self._start)) / length > \
                length - cfg.acceptance_radius
            if np.hypot(*(target - pos)) > cfg.acceptance_radius and not passed:
                return target, cfg.speed, False
            self._start = target
            self._index += 1
        return self._path[-1], 0.0, True


def allocate(surge: float, moment: float, vessel: VesselParams) -> tuple[float, float]:
    """Split a surge force and a yaw moment over the two stern thrusters.

    ``surge = left + right`` and ``moment = thruster_y (right - left)`` (the right
    thruster sits at y = -thruster_y, so pushing it forward turns the boat CCW). When the
    pair is not feasible the yaw moment is kept (up to the largest differential the
    thrusters can give) and the surge force is reduced: steering matters more than speed.

    Args:
        surge: [N] requested surge force.
        moment: [N m] requested yaw moment (positive CCW).
        vessel: provides thruster_y, max_thrust_forward, max_thrust_reverse.

    Returns:
        (left, right) [N], each within [-max_thrust_reverse, max_thrust_forward].
    """
    hi, lo = vessel.max_thrust_forward, -vessel.max_thrust_reverse
    diff = float(np.clip(moment / vessel.thruster_y, lo - hi, hi - lo))   # right - left
    half = abs(diff) / 2.0
    mean = float(np.clip(surge / 2.0, lo + half, hi - half))
    return mean - diff / 2.0, mean + diff / 2.0


def lawnmower(polygon: np.ndarray, spacing: float, inset: float) -> np.ndarray:
    """Boustrophedon waypoints covering a convex polygon.

    Lines run parallel to the polygon's longest edge, the first one ``inset`` from it and
    then every ``spacing``; when the strip left beyond the last line is wider than half a
    spacing, one more line runs down its middle, so every point of the inset polygon is
    within half a spacing of a line. Each line is clipped to the polygon shrunk by
    ``inset`` and visited in alternating directions.

    Args:
        polygon: (V, 2) [m] vertices of a convex polygon (either orientation).
        spacing: [m] line spacing. inset: [m] margin from the edges.

    Returns:
        (2 L, 2) [m] waypoints: start and end of each of the L lines in visiting order.

    Raises:
        ValueError: when no line fits inside the inset polygon.
    """
    edges = np.roll(polygon, -1, axis=0) - polygon
    longest = int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))
    origin = polygon[longest]
    along = edges[longest] / np.hypot(*edges[longest])
    normal = np.array([-along[1], along[0]])
    if ((polygon - origin) @ normal).sum() < 0:   # point the normal into the polygon
        normal = -normal
    width = float(((polygon - origin) @ normal).max()) - 2.0 * inset
    if width < 0:
        raise ValueError(f'survey polygon is narrower than twice the inset ({inset} m)')
    offsets = list(np.arange(0.0, width + 1e-9, spacing))
    if width - offsets[-1] > spacing / 2.0:   # the far strip would be left uncovered
        offsets.append((offsets[-1] + width) / 2.0)
    # Inward half-planes of the inset polygon: n_i . p <= d_i (n_i outward edge normals).
    centroid = polygon.mean(axis=0)
    outward = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    outward /= np.hypot(outward[:, 0], outward[:, 1])[:, None]
    outward *= np.sign(((polygon - centroid) * outward).sum(axis=1))[:, None]
    limit = (outward * polygon).sum(axis=1) - inset
    waypoints = []
    for offset in offsets:
        point = origin + normal * (inset + offset)
        # Clip the line point + t * along to every half-plane.
        rate = outward @ along
        room = limit - outward @ point
        with np.errstate(divide='ignore', invalid='ignore'):
            bounds = room / rate
        parallel = np.abs(rate) <= 1e-12
        t_max = float(np.min(bounds[rate > 1e-12], initial=np.inf))
        t_min = float(np.max(bounds[rate < -1e-12], initial=-np.inf))
        if np.any(parallel & (room < -1e-6)) or t_max - t_min < 1e-6:
            continue
        ends = [point + t_min * along, point + t_max * along]
        waypoints.extend(ends if len(waypoints) % 4 == 0 else ends[::-1])
    if not waypoints:
        raise ValueError('no survey line fits inside the inset polygon')
    return np.array(waypoints)


def _polygon(flat: tuple[float, ...]) -> np.ndarray:
    """(V, 2) vertices of a flat (x0, y0, x1, y1, ...) tuple; checks it is convex."""
    points = np.asarray(flat, float)
    if points.ndim != 1 or len(points) < 6 or len(points) % 2 or not np.isfinite(points).all():
        raise ValueError('survey_polygon must be at least 3 finite (x, y) pairs, flat: '
                         f'(x0, y0, x1, y1, ...), got {flat}')
    polygon = points.reshape(-1, 2)
    edges = np.roll(polygon, -1, axis=0) - polygon
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - \
        edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if not (np.all(turns > 0) or np.all(turns < 0)):
        raise ValueError('survey_polygon must be convex with distinct vertices in order '
                         '(split a concave area into convex ones)')
    winding = np.arctan2(turns, (edges * np.roll(edges, -1, axis=0)).sum(axis=1)).sum()
    if abs(abs(winding) - 2 * np.pi) > 1e-6:
        raise ValueError('survey_polygon must not intersect itself')
    return polygon


def _clamp_integral(integral: float, gain: float, limit: float) -> float:
    """Anti-windup: the integral term alone never asks for more than ``limit``."""
    if gain <= 0.0:
        return 0.0
    bound = limit / gain
    return min(max(integral, -bound), bound)
