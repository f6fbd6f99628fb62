"""The DESIGN.md §5 safety invariants at a thruster output.

Every driver that turns ``thrusters/*/thrust`` into actuator commands passes them through a
:class:`ThrustGuard`: a thruster whose last command is older than ``timeout`` gets zero
thrust, ``safety/estop`` holds every thruster at zero until released, and commands beyond
the thruster's limits are saturated. Times are seconds on whatever monotonic clock the
caller uses (the node's clock).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from asv_autonomy.measurements import InvalidInput


@dataclass(frozen=True)
class ThrustGuardConfig:
    """Args:
        thrusters: number of thrusters (index 0 = left, 1 = right for a twin-hull boat).
        timeout: [s] a thruster with no command for longer outputs zero.
        max_forward: [N] largest forward thrust passed on.
        max_reverse: [N] largest reverse thrust passed on (a positive number).
    """

    thrusters: int = 2
    timeout: float = 0.5
    max_forward: float = 45.0
    max_reverse: float = 35.0

    def __post_init__(self):
        if self.thrusters < 1:
            raise ValueError(f'thrusters must be >= 1, got {self.thrusters}')
        for name in ('timeout', 'max_forward', 'max_reverse'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')


class GuardedThrust(NamedTuple):
    """What may reach the thrusters now.

    Args:
        thrust: (thrusters,) [N] after estop, timeout and saturation.
        stale: (thrusters,) bool, True where the timeout zeroed the thruster.
        estop: the emergency stop is engaged (every thrust is zero).
    """

    thrust: np.ndarray
    stale: np.ndarray
    estop: bool


class ThrustGuard:
    """Timeout, emergency stop and saturation of thrust commands (see module docstring)."""

    def __init__(self, config: ThrustGuardConfig = ThrustGuardConfig()):
        self.config = config
        self._thrust = np.zeros(config.thrusters)
        self._time = np.full(config.thrusters, -math.inf)
        self.estop = False

    def command(self, index: int, thrust: float, now: float) -> None:
        """Record a command of ``thrust`` [N] for thruster ``index`` received at ``now`` [s].

        Raises:
            InvalidInput: 'nan' for a non-finite thrust, 'out_of_range' for an unknown index.
        """
        if not 0 <= index < self.config.thrusters:
            raise InvalidInput('out_of_range', f'thruster {index} of {self.config.thrusters}')
        if not math.isfinite(thrust):
            raise InvalidInput('nan', f'thrust {thrust} for thruster {index}')
        self._thrust[index] = min(max(thrust, -self.config.max_reverse),
                                  self.config.max_forward)
        self._time[index] = now

    def set_estop(self, engaged: bool) -> None:
        """Engage (True) or release (False) the emergency stop. Commands sent before the
        release are forgotten: each thruster waits for a command sent after it."""
        if engaged or self.estop:
            self._time[:] = -math.inf
        self.estop = bool(engaged)

    def output(self, now: float) -> GuardedThrust:
        """The thrust to apply at ``now`` [s]."""
        stale = (now - self._time) > self.config.timeout
        if self.estop:
            return GuardedThrust(np.zeros(self.config.thrusters), stale, True)
        return GuardedThrust(np.where(stale, 0.0, self._thrust), stale, False)
