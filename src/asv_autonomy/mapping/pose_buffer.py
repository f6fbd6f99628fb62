"""Where was a sensor when it took a reading: odometry history, interpolated at a stamp.

A reading (sonar depth, water temperature) is stamped when it was taken; odometry arrives
on its own topic, at its own rate and latency. `PoseBuffer` keeps the recent poses, places
each reading at the pose interpolated at its stamp (linear in x, y; shortest way round in
yaw) plus the sensor's lever arm, and holds a reading that is newer than the latest pose
(by up to ``max_wait``) until its pose arrives, so that a reading is not lost because
odometry is a few ms behind or was queued behind it.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Hashable, NamedTuple

import numpy as np

from ..measurements import InvalidInput, PlanarOdometry, wrap_angle


@dataclass(frozen=True)
class PoseBufferConfig:
    """Args:
        history: [s] poses older than the latest one by more than this are forgotten
            (readings that old are refused).
        tolerance: [s] a reading outside the poses' span (or in a gap, see ``max_gap``) is
            placed only when a pose is at most this far from its stamp.
        max_gap: [s] a reading between two consecutive poses at most this far apart is
            placed at the interpolated pose, however far from both: odometry paced by
            slow fixes (a GNSS-only boat, a replayed NMEA log at 0.5 Hz) still places
            every reading. Farther apart they are a gap in the odometry.
        max_wait: [s] a reading up to this much newer than the latest pose is held until
            a pose at or after its stamp arrives; newer ones are refused. Generous: a busy
            node takes one queued message per topic in turn, so under a backlog it reaches
            readings well before the (more frequent) odometry queued with them (10.7 s
            ahead once in `make sim` on 2 cores).
        max_held: at most this many readings wait (the oldest is refused beyond), e.g.
            while no odometry arrives at all.
        restart_jump: [s] a pose older than the latest one by more than this means time
            restarted (bag loop, new simulation): the history and held readings are cleared.
    """

    history: float = 10.0
    tolerance: float = 0.5
    max_gap: float = 3.0
    max_wait: float = 30.0
    max_held: int = 1000
    restart_jump: float = 1.0

    def __post_init__(self):
        for name in ('history', 'tolerance', 'max_gap', 'restart_jump'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0 s, got {value}')
        if not (math.isfinite(self.max_wait) and self.max_wait >= 0.0):
            raise ValueError(f'max_wait must be >= 0 s, got {self.max_wait}')
        if self.max_held < 0:
            raise ValueError(f'max_held must be >= 0, got {self.max_held}')
        if max(self.tolerance, self.max_gap) > self.history:
            raise ValueError(f'tolerance ({self.tolerance} s) and max_gap ({self.max_gap} s) '
                             f'must not exceed history ({self.history} s)')


class HeldReading(NamedTuple):
    """A reading waiting for its pose."""

    key: Hashable            # whose reading (e.g. the field name)
    stamp: float             # [s]
    value: float             # in the field's unit
    lever_arm: tuple[float, float]   # [m] sensor (x forward, y left) in base_link


class PlacedReading(NamedTuple):
    """A reading at the sensor's position in ``map``."""

    key: Hashable
    stamp: float   # [s]
    value: float
    x: float       # [m] east
    y: float       # [m] north


class PoseBuffer:
    """Recent odometry; readings placed at the interpolated pose of their stamp.

    ``hold`` takes a reading (placed at once when its pose is known, else held);
    ``add_pose`` adds odometry (placing held readings it covers); ``release`` hands over
    the readings placed so far and those refused while held.

    Args:
        config: history length and tolerances.
    """

    def __init__(self, config: PoseBufferConfig = PoseBufferConfig()):
        self.config = config
        self._stamps: list[float] = []
        self._poses: list[tuple[float, float, float]] = []   # x, y, yaw
        self._held: list[HeldReading] = []
        self._placed: list[PlacedReading] = []
        self._refused: list[tuple[HeldReading, InvalidInput]] = []

    @property
    def latest_stamp(self) -> float | None:
        """[s] of the newest pose, None before the first."""
        return self._stamps[-1] if self._stamps else None

    @property
    def held(self) -> int:
        """Number of readings waiting for their pose."""
        return len(self._held)

    def add_pose(self, odometry: PlanarOdometry) -> None:
        """Append a pose (stamps must not go back, except a restart: see the config).

        Raises:
            InvalidInput: 'nan' for a non-finite pose, 'out_of_order' for a stamp before
                the latest one (by at most ``restart_jump``).
        """
        stamp, pose = float(odometry.stamp), (float(odometry.x), float(odometry.y),
                                              float(odometry.yaw))
        if not (math.isfinite(stamp) and all(math.isfinite(v) for v in pose)):
            raise InvalidInput('nan', f'pose {pose} at {stamp} s')
        latest = self.latest_stamp
        if latest is not None and stamp < latest:
            if latest - stamp <= self.config.restart_jump:
                raise InvalidInput('out_of_order', f'pose at {stamp:.3f} s < latest '
                                                   f'{latest:.3f} s')
            self.clear()
            latest = None
        if latest is not None and stamp == latest:
            self._poses[-1] = pose   # a repeated stamp: the newer estimate wins
        else:
            self._stamps.append(stamp)
            self._poses.append(pose)
        self._forget_old()
        self._place_held()

    def hold(self, key: Hashable, stamp: float, value: float,
             lever_arm: tuple[float, float] = (0.0, 0.0)) -> None:
        """Take a reading: placed now when its pose is known, else held (also before the
        first pose) until a pose at or after its stamp arrives.

        Raises:
            InvalidInput: 'nan' for a non-finite stamp or value; 'no_pose' when the stamp
                is older than the history, newer than the latest pose by more than
                ``max_wait``, or in a gap of the odometry.
        """
        if not (math.isfinite(stamp) and math.isfinite(value)):
            raise InvalidInput('nan', f'reading {value} at {stamp} s')
        reading = HeldReading(key, float(stamp), float(value),
                              (float(lever_arm[0]), float(lever_arm[1])))
        latest = self.latest_stamp
        if latest is not None and stamp <= latest:
            if stamp < latest - self.config.history:
                raise InvalidInput('no_pose', f'reading at {stamp:.3f} s is older than the '
                                              f'pose history ({self.config.history} s before '
                                              f'{latest:.3f} s)')
            self._placed.append(self._place(reading))
            return
        self._check_wait(reading)
        self._held.append(reading)
        if len(self._held) > self.config.max_held:
            self._refused.append((self._held.pop(0), InvalidInput(
                'no_pose', f'more than {self.config.max_held} readings waiting for odometry')))

    def release(self) -> tuple[list[PlacedReading], list[tuple[HeldReading, InvalidInput]]]:
        """Readings placed since the last call, and held readings refused since then
        (with the reason), both in the order they were placed or refused."""
        placed, refused = self._placed, self._refused
        self._placed, self._refused = [], []
        return placed, refused

    def pose_at(self, stamp: float) -> np.ndarray:
        """(3,) x [m], y [m], yaw [rad] of ``base_link`` at ``stamp`` [s].

        Linear between the poses around it (yaw the shorter way round), or the nearest pose
        at the ends of the history.

        Raises:
            InvalidInput: 'no_pose' when no pose is within ``tolerance`` of ``stamp``.
        """
        stamps, tol = self._stamps, self.config.tolerance
        if not stamps:
            raise InvalidInput('no_pose', 'no odometry yet')
        i = bisect.bisect_left(stamps, stamp)
        before = i - 1 if i > 0 else None
        after = i if i < len(stamps) else None
        gap = min(abs(stamp - stamps[j]) for j in (before, after) if j is not None)
        bracketed = (before is not None and after is not None
                     and stamps[after] - stamps[before] <= self.config.max_gap)
        if gap > tol and not bracketed:
            raise InvalidInput('no_pose', f'nearest pose is {gap:.3f} s from {stamp:.3f} s '
                                          f'(tolerance {tol} s)')
        if after is not None and stamps[after] == stamp or before is None:
            return np.array(self._poses[after])
        if after is None:
            return np.array(self._poses[before])
        (x0, y0, yaw0), (x1, y1, yaw1) = self._poses[before], self._poses[after]
        w = (stamp - stamps[before]) / (stamps[after] - stamps[before])
        return np.array([x0 + w * (x1 - x0), y0 + w * (y1 - y0),
                         float(wrap_angle(yaw0 + w * wrap_angle(yaw1 - yaw0)))])

    def clear(self) -> None:
        """Forget every pose and held reading (readings not yet released are kept)."""
        self._stamps.clear()
        self._poses.clear()
        self._held.clear()

    def _place(self, reading: HeldReading) -> PlacedReading:
        x, y, yaw = self.pose_at(reading.stamp)
        dx, dy = reading.lever_arm
        c, s = math.cos(yaw), math.sin(yaw)
        return PlacedReading(reading.key, reading.stamp, reading.value,
                             x + c * dx - s * dy, y + s * dx + c * dy)

    def _check_wait(self, reading: HeldReading) -> None:
        latest = self.latest_stamp
        if latest is not None and reading.stamp - latest > self.config.max_wait:
            raise InvalidInput('no_pose', f'reading at {reading.stamp:.3f} s is '
                                          f'{reading.stamp - latest:.3f} s ahead of odometry')

    def _place_held(self) -> None:
        latest = self.latest_stamp
        waiting = []
        for reading in self._held:
            try:
                if reading.stamp <= latest:
                    self._placed.append(self._place(reading))
                else:
                    self._check_wait(reading)   # held before the first pose
                    waiting.append(reading)
            except InvalidInput as error:
                self._refused.append((reading, error))
        self._held = waiting

    def _forget_old(self) -> None:
        horizon = self._stamps[-1] - self.config.history
        old = bisect.bisect_left(self._stamps, horizon)
        if old > 64 or old > len(self._stamps) // 2:   # amortised: trim in blocks
            del self._stamps[:old]
            del self._poses[:old]
