"""The boat's health as the planner needs it, read from ``diagnostics`` statuses.

The anomaly detector (one status per channel), the drivers and the localization all report
on ``diagnostics``; a status whose name contains a configured key speaks for that part of
the boat. A thruster at WARN is degraded, at ERROR failed; the GPS at ERROR/STALE is lost;
a ``stuck`` status at WARN or worse means stuck. Statuses not repeated within ``expiry``
seconds no longer count (their publisher went away or recovered). Independently of any
status, a position standard deviation above ``gps_lost_position_std`` (the filter coasting
without fixes) also means the GPS is lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..measurements import PlanarOdometry

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class VehicleHealth:
    """What the planner knows about the boat's health.

    Args:
        thrust_efficiency: (left, right) 1 healthy, 0 failed.
        gps_ok: False while the position fix is lost.
        stuck: the boat is reported stuck (weeds, grounding).
    """

    thrust_efficiency: tuple[float, float] = (1.0, 1.0)
    gps_ok: bool = True
    stuck: bool = False


@dataclass(frozen=True)
class HealthMonitorConfig:
    """Args:
        left_thruster_key, right_thruster_key, gps_key, stuck_key: substrings of status
            names (case-insensitive) that speak for that part; '' disables one.
        degraded_efficiency: thrust efficiency assumed for a thruster at WARN.
        expiry: [s] a status older than this no longer counts.
        gps_lost_position_std: [m] position 1-sigma above which the GPS counts as lost.
    """

    left_thruster_key: str = 'thrust_left'
    right_thruster_key: str = 'thrust_right'
    gps_key: str = 'gps'
    stuck_key: str = 'stuck'
    degraded_efficiency: float = 0.5
    expiry: float = 5.0
    gps_lost_position_std: float = 5.0

    def __post_init__(self):
        if not 0.0 < self.degraded_efficiency < 1.0:
            raise ValueError(f'degraded_efficiency must be in (0, 1), got '
                             f'{self.degraded_efficiency}')
        for name in ('expiry', 'gps_lost_position_std'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')


class HealthMonitor:
    """Turns status reports into a :class:`VehicleHealth`."""

    def __init__(self, config: HealthMonitorConfig = HealthMonitorConfig()):
        self.config = config
        self._levels: dict[str, tuple[int, float]] = {}   # part -> (worst level, stamp)
        self._position_std = (0.0, -math.inf)

    def report(self, name: str, level: int, stamp: float) -> None:
        """One diagnostic status ``name`` at ``level`` (0 OK .. 3 STALE) at ``stamp`` [s]."""
        lowered = name.lower()
        cfg = self.config
        for part, key in (('left', cfg.left_thruster_key), ('right', cfg.right_thruster_key),
                          ('gps', cfg.gps_key), ('stuck', cfg.stuck_key)):
            if key and key.lower() in lowered:
                self._levels[part] = (int(level), stamp)

    def position_std(self, std: float, stamp: float) -> None:
        """[m] position 1-sigma of the latest odometry."""
        self._position_std = (std, stamp)

    def odometry(self, odometry: PlanarOdometry) -> None:
        """The latest odometry: its position 1-sigma (the larger axis of the covariance)
        tells whether the filter is coasting without GPS."""
        c = odometry.covariance
        self.position_std(math.sqrt(max(c[0, 0], c[1, 1], 0.0)), odometry.stamp)

    def health(self, now: float) -> VehicleHealth:
        """The boat's health at ``now`` [s]."""
        def level(part: str) -> int:
            value, stamp = self._levels.get(part, (OK, -math.inf))
            return value if now - stamp <= self.config.expiry else OK

        def efficiency(part: str) -> float:
            worst = level(part)
            if worst >= ERROR:
                return 0.0
            return self.config.degraded_efficiency if worst == WARN else 1.0

        std, stamp = self._position_std
        coasting = (now - stamp <= self.config.expiry
                    and not std <= self.config.gps_lost_position_std)
        return VehicleHealth(thrust_efficiency=(efficiency('left'), efficiency('right')),
                             gps_ok=level('gps') < ERROR and not coasting,
                             stuck=level('stuck') >= WARN)
