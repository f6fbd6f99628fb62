"""Fault injection for the simulator: fault records, a YAML schedule, aggregated effects.

Times are seconds since the start of the simulation. A fault is active on
``onset <= t < onset + duration`` (``duration`` None: until the end).

YAML schedule (see ``config/faults_example.yaml``)::

    faults:
      - type: thruster_degradation   # one of FAMILIES
        onset: 120.0                  # [s]
        duration: 60.0                # [s], optional (omitted or null: until the end)
        side: left                    # family parameters ("severity"), see FAMILIES
        efficiency: 0.4
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Family -> {parameter: default, or None when the parameter is required}. The parameters
# are the family's severity; their ranges are checked in _check_params.
FAMILIES: dict[str, dict[str, object]] = {
    'thruster_degradation': {'side': None, 'efficiency': None},   # efficiency in [0, 1]
    'thruster_failure': {'side': None},                          # efficiency 0
    'stuck': {'drag_multiplier': None},                          # >= 1 (weeds)
    'imu_bias_drift': {'gyro_drift_rate': 0.0, 'heading_drift_rate': 0.0},
    'gps_dropout': {},
    'gps_jump': {'offset': None},                                # [m] (east, north)
    'sonar_spurious': {'probability': None, 'depth_range': None},  # [m] (lo, hi)
}

# Sensor/actuator channel each family corrupts (names the anomaly detector reports).
_CHANNEL = {
    'thruster_degradation': 'thruster_{side}', 'thruster_failure': 'thruster_{side}',
    'stuck': 'hull', 'imu_bias_drift': 'imu', 'gps_dropout': 'gps', 'gps_jump': 'gps',
    'sonar_spurious': 'sonar',
}


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{what} must be a finite number, got {value!r}')
    return float(value)


def _pair(value, what: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f'{what} must be a list of two numbers, got {value!r}')
    return (_number(value[0], what), _number(value[1], what))


def _check_params(kind: str, params: dict) -> dict:
    """Validated, completed copy of a family's parameters (ValueError on a problem)."""
    if kind not in FAMILIES:
        raise ValueError(f'unknown fault type {kind!r} (known: {", ".join(FAMILIES)})')
    spec = FAMILIES[kind]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(f'unknown key(s) {unknown} for {kind} (allowed: {sorted(spec)})')
    missing = sorted(k for k, default in spec.items() if default is None and k not in params)
    if missing:
        raise ValueError(f'{kind} needs key(s) {missing}')
    out = {k: params.get(k, default) for k, default in spec.items()}
    if 'side' in out and out['side'] not in ('left', 'right'):
        raise ValueError(f"side must be 'left' or 'right', got {out['side']!r}")
    if 'efficiency' in out:
        out['efficiency'] = _number(out['efficiency'], 'efficiency')
        if not 0.0 <= out['efficiency'] <= 1.0:
            raise ValueError(f"efficiency must be in [0, 1], got {out['efficiency']}")
    if 'drag_multiplier' in out:
        out['drag_multiplier'] = _number(out['drag_multiplier'], 'drag_multiplier')
        if not 1.0 <= out['drag_multiplier'] <= 100.0:
            raise ValueError(f"drag_multiplier must be in [1, 100], got {out['drag_multiplier']}")
    for key in ('gyro_drift_rate', 'heading_drift_rate'):
        if key in out:
            out[key] = _number(out[key], key)
    if 'offset' in out:
        out['offset'] = _pair(out['offset'], 'offset')
    if 'probability' in out:
        out['probability'] = _number(out['probability'], 'probability')
        if not 0.0 <= out['probability'] <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {out['probability']}")
    if 'depth_range' in out:
        out['depth_range'] = _pair(out['depth_range'], 'depth_range')
        lo, hi = out['depth_range']
        if not 0.0 <= lo <= hi:
            raise ValueError(f'depth_range must satisfy 0 <= lo <= hi, got {out["depth_range"]}')
    return out


@dataclass(frozen=True)
class Fault:
    """One scheduled fault.

    Args:
        kind: family name, a key of ``FAMILIES``.
        onset: [s] since the start of the simulation.
        duration: [s] or None (until the end).
        params: the family's parameters (validated and completed with defaults).
    """

    kind: str
    onset: float
    duration: float | None = None
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        _number(self.onset, 'onset')
        if self.onset < 0.0:
            raise ValueError(f'onset must be >= 0 s, got {self.onset}')
        if self.duration is not None and not _number(self.duration, 'duration') >= 0.0:
            raise ValueError(f'duration must be >= 0 s, got {self.duration}')
        object.__setattr__(self, 'params', _check_params(self.kind, dict(self.params)))

    @property
    def end(self) -> float:
        """[s] end of the fault (inf when it lasts until the end)."""
        return math.inf if self.duration is None else self.onset + self.duration

    @property
    def channel(self) -> str:
        """Channel the fault corrupts, e.g. ``'thruster_left'``, ``'gps'``, ``'hull'``."""
        return _CHANNEL[self.kind].format(**self.params)

    def active(self, t: float) -> bool:
        """True while onset <= t < end."""
        return self.onset <= t < self.end


@dataclass(frozen=True)
class FaultEffects:
    """What the active faults do to the simulator at one time (neutral by default).

    Args:
        thrust_efficiency: (left, right) multipliers on the delivered thrust.
        drag_scale: multiplier on hydrodynamic damping.
        gyro_bias: [rad/s] extra gyro z bias.
        heading_bias: [rad] extra error of the IMU's heading.
        gps_dropout: no GNSS fix.
        gps_offset: [m] (east, north) added to the GNSS position.
        sonar_spurious_probability: chance that a sonar reading is a spurious echo.
        sonar_spurious_range: [m] (lo, hi) uniform range of the spurious echoes.
    """

    thrust_efficiency: tuple[float, float] = (1.0, 1.0)
    drag_scale: float = 1.0
    gyro_bias: float = 0.0
    heading_bias: float = 0.0
    gps_dropout: bool = False
    gps_offset: tuple[float, float] = (0.0, 0.0)
    sonar_spurious_probability: float = 0.0
    sonar_spurious_range: tuple[float, float] = (0.0, 0.0)


NO_EFFECTS = FaultEffects()


def combine(faults, t: float) -> FaultEffects:
    """Aggregate the effects of ``faults`` (assumed active) at time t [s].

    Multipliers multiply, offsets and drifts add, spurious-echo probabilities combine as
    independent events (the range of the most likely one is used).
    """
    if not faults:
        return NO_EFFECTS
    eff = [1.0, 1.0]
    drag, gyro, heading, dropout = 1.0, 0.0, 0.0, False
    offset = [0.0, 0.0]
    p_clean, p_best, spurious_range = 1.0, -1.0, (0.0, 0.0)
    for f in faults:
        p, age = f.params, t - f.onset
        if f.kind in ('thruster_degradation', 'thruster_failure'):
            eff[0 if p['side'] == 'left' else 1] *= p.get('efficiency', 0.0)
        elif f.kind == 'stuck':
            drag *= p['drag_multiplier']
        elif f.kind == 'imu_bias_drift':
            gyro += p['gyro_drift_rate'] * age
            heading += p['heading_drift_rate'] * age
        elif f.kind == 'gps_dropout':
            dropout = True
        elif f.kind == 'gps_jump':
            offset[0] += p['offset'][0]
            offset[1] += p['offset'][1]
        elif f.kind == 'sonar_spurious':
            p_clean *= 1.0 - p['probability']
            if p['probability'] > p_best:
                p_best, spurious_range = p['probability'], p['depth_range']
    return FaultEffects(tuple(eff), drag, gyro, heading, dropout, tuple(offset),
                        1.0 - p_clean, spurious_range)


class FaultSchedule:
    """An ordered set of faults; ``active(t)`` and ``effects(t)`` answer what is on at t."""

    def __init__(self, faults=()):
        self.faults: list[Fault] = list(faults)

    def add(self, fault: Fault):
        """Inject one more fault (e.g. at run time)."""
        self.faults.append(fault)

    def active(self, t: float) -> list[Fault]:
        """Faults active at t [s] since the start of the simulation."""
        return [f for f in self.faults if f.active(t)]

    def effects(self, t: float) -> FaultEffects:
        """Aggregated effects of the faults active at t [s]."""
        return combine(self.active(t), t)

    @classmethod
    def from_yaml(cls, path) -> 'FaultSchedule':
        """Load and strictly validate a schedule file (ValueError naming file, entry, problem).

        The file holds a mapping with one key ``faults``: a list of entries with ``type``,
        ``onset`` [s], optional ``duration`` [s] and the family's parameters (FAMILIES).
        """
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f'{path}: cannot read fault schedule: {err}') from err
        if doc is None:
            doc = {'faults': []}
        if not isinstance(doc, dict) or set(doc) != {'faults'}:
            raise ValueError(f"{path}: expected a mapping with the single key 'faults'")
        entries = doc['faults'] or []
        if not isinstance(entries, list):
            raise ValueError(f"{path}: 'faults' must be a list")
        faults = []
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise ValueError(f'expected a mapping, got {entry!r}')
                entry = dict(entry)
                for key in ('type', 'onset'):
                    if key not in entry:
                        raise ValueError(f'missing key {key!r}')
                faults.append(Fault(kind=entry.pop('type'), onset=entry.pop('onset'),
                                    duration=entry.pop('duration', None), params=entry))
            except ValueError as err:
                raise ValueError(f'{path}: fault entry {index}: {err}') from err
        return cls(faults)

    def to_yaml(self, path) -> None:
        """Write the schedule in the format ``from_yaml`` reads (``asv sim run --faults``)."""
        entries = []
        for fault in self.faults:
            entry = {'type': fault.kind, 'onset': fault.onset, 'duration': fault.duration}
            entry.update({k: list(v) if isinstance(v, tuple) else v
                          for k, v in fault.params.items()})
            entries.append(entry)
        Path(path).write_text(yaml.safe_dump({'faults': entries}, sort_keys=False))


def random_fault(rng, kind: str, onset: float, duration: float) -> Fault:
    """A fault of family ``kind`` with a random, clearly abnormal severity.

    Severities: thruster efficiency 0.1-0.6; drag x5-30 (weeds); gyro drift 1-5e-4 rad/s^2
    and heading drift 1-4e-3 rad/s (either sign); GNSS jump 6-25 m in any direction;
    spurious sonar echoes with probability 0.2-0.7.
    """
    side = str(rng.choice(['left', 'right']))
    sign = lambda: float(rng.choice([-1.0, 1.0]))  # noqa: E731
    if kind == 'thruster_degradation':
        params = {'side': side, 'efficiency': float(rng.uniform(0.1, 0.6))}
    elif kind == 'thruster_failure':
        params = {'side': side}
    elif kind == 'stuck':
        params = {'drag_multiplier': float(rng.uniform(5.0, 30.0))}
    elif kind == 'imu_bias_drift':
        params = {'gyro_drift_rate': sign() * float(rng.uniform(1e-4, 5e-4)),
                  'heading_drift_rate': sign() * float(rng.uniform(1e-3, 4e-3))}
    elif kind == 'gps_jump':
        angle, size = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(6.0, 25.0)
        params = {'offset': (float(size * math.cos(angle)), float(size * math.sin(angle)))}
    elif kind == 'sonar_spurious':
        params = {'probability': float(rng.uniform(0.2, 0.7)), 'depth_range': (0.5, 3.0)}
    else:
        params = {}
    return Fault(kind=kind, onset=float(onset), duration=float(duration), params=params)


def random_schedule(rng, duration: float, count: int = 2, families=tuple(FAMILIES),
                    warmup: float = 120.0, fault_duration=(20.0, 90.0),
                    gap: float = 40.0) -> FaultSchedule:
    """``count`` non-overlapping faults of random families within ``duration`` [s].

    Args:
        rng: numpy Generator. warmup: [s] fault-free start (the boat reaches its survey).
        fault_duration: [s] (shortest, longest) duration. gap: [s] fault-free time between
            faults, so each one's effect can be told apart.

    Raises:
        ValueError: the faults cannot fit in ``duration``.
    """
    unknown = set(families) - set(FAMILIES)
    if unknown or not families:
        raise ValueError(f'unknown fault families {sorted(unknown)} (known: {list(FAMILIES)})')
    lo, hi = fault_duration
    if not 0.0 < lo <= hi:
        raise ValueError(f'fault_duration must be 0 < shortest <= longest, got {fault_duration}')
    slot = (duration - warmup) / max(count, 1)
    if count and slot < hi + gap:
        raise ValueError(f'{count} faults of up to {hi} s need more than {duration} s '
                         f'({warmup} s warm-up, {gap} s gaps)')
    faults = []
    for index in range(count):
        length = float(rng.uniform(lo, hi))
        start = warmup + index * slot + float(rng.uniform(0.0, slot - length - gap))
        faults.append(random_fault(rng, str(rng.choice(list(families))), start, length))
    return FaultSchedule(faults)
