"""Keeps a faster-than-real-time simulation within reach of the stack it drives.

The simulator node advances its clock at a real-time factor on the wall clock. When the
machine cannot run the whole stack that fast (2 cores, a planner solving at 5 Hz of
simulated time = 25 solves per wall second at 5x), the nodes fall behind the clock: the
localization publishes with gaps of seconds, thrust commands arrive late, the thrust
watchdog zeroes the thrusters, and what the run measures is the starved machine rather
than the autonomy. Like Gazebo's lockstep, but without touching the nodes, the pacer
lets the clock lead the newest output of each paced signal (the odometry's stamp, the
arrival of a thrust command) by at most ``lead`` seconds of simulated time. A signal that
has not advanced for ``timeout`` wall seconds stops pacing (its node stopped, finished,
or is e-stopped) until it advances again, so the simulation never waits for it forever.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ['StackPacer']


@dataclass
class _Signal:
    sim_time: float      # [s] newest simulated time the signal has reached
    wall_time: float     # [s] wall time it last advanced


class StackPacer:
    """Args:
        lead: [s] simulated time the clock may run ahead of the slowest active signal
            (shorter than the thrust watchdog's timeout, so a command that keeps up with
            its period is never timed out by the simulation outrunning it).
        timeout: [s] wall time after which a signal that stopped advancing stops pacing.
    """

    def __init__(self, lead: float, timeout: float):
        if not (math.isfinite(lead) and lead > 0.0):
            raise ValueError(f'lead must be > 0 s, got {lead}')
        if not (math.isfinite(timeout) and timeout > 0.0):
            raise ValueError(f'timeout must be > 0 s, got {timeout}')
        self.lead = lead
        self.timeout = timeout
        self._signals: dict[str, _Signal] = {}
        self.held = 0            # limit() calls that held the clock back

    def observe(self, name: str, sim_time: float, wall_time: float) -> None:
        """Signal ``name`` reached ``sim_time`` [s] (a stamp, or the simulated time a
        message arrived at); ``wall_time`` [s] monotonic. Older or non-finite times are
        ignored (an out-of-order message does not move the signal back)."""
        if not math.isfinite(sim_time):
            return
        signal = self._signals.get(name)
        if signal is None:
            self._signals[name] = _Signal(sim_time, wall_time)
        elif sim_time > signal.sim_time:
            signal.sim_time, signal.wall_time = sim_time, wall_time

    def active(self, wall_time: float) -> list[str]:
        """Names of the signals that pace the clock now."""
        return [name for name, s in self._signals.items()
                if wall_time - s.wall_time <= self.timeout]

    def limit(self, wall_time: float) -> float:
        """[s] the latest simulated time the clock may reach now (inf: nothing paces)."""
        times = [self._signals[name].sim_time for name in self.active(wall_time)]
        return min(times) + self.lead if times else math.inf

    def allows(self, sim_time: float, wall_time: float) -> bool:
        """Whether the clock may advance to ``sim_time`` now (counts the holds)."""
        if sim_time <= self.limit(wall_time) + 1e-9:
            return True
        self.held += 1
        return False
