"""The built-in simulator: vessel dynamics in a lake with current, wind, sensors and faults.

``Simulator.step`` advances the truth by ``dt`` and returns the sensor readings that fell
due. Safety (DESIGN.md section 5) lives here, in the thrust consumer: without a thrust
command for longer than ``thrust_timeout`` the commanded thrust is zero, and while the
emergency stop is engaged it is zero until released. The boat cannot enter water shallower
than its draft or an obstacle: it stops at the contact (velocity zeroed, ``grounded`` /
``collision`` flagged) and can back off.

Times: ``Simulator.time`` and every stamp are ``start_time + elapsed`` [s]; the fields and
the fault schedule use ``elapsed`` (seconds since the start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geodesy import Datum, LocalENU
from ..measurements import (GnssFix, ImuSample, InvalidInput, PlanarOdometry, ScalarReading,
                            wrap_angle)
from ..planning import vessel
from ..planning.vessel import VesselParams
from .camera import CameraConfig, CameraRenderer
from .faults import NO_EFFECTS, Fault, FaultSchedule
from .fields import (CurrentConfig, CurrentField, TemperatureConfig, TemperatureField, Wind,
                     WindConfig)
from .sensors import (Gnss, GnssConfig, Imu, ImuConfig, RateTimer, Sonar, SonarConfig,
                      TemperatureProbe, TemperatureProbeConfig)
from .world import World, WorldConfig

# [s] largest dt * drag_scale per RK4 step (stable up to ~0.6 s, see vessel.step).
_MAX_DT_DRAG = 0.4
# [s] steps in contact closer than this count as one contact.
CONTACT_GAP_S = 2.0


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator needs (each nested config becomes ``name.field`` params).

    Args:
        seed: seed of every random process (sensor noise, gusts, camera look).
        dt: [s] physics step.
        start_pose: (x [m], y [m], yaw [rad]) in ``map`` at t = 0.
        start_time: [s] epoch added to every stamp (default 2025-06-15 15:06:40 UTC).
        thrust_timeout: [s] thrust falls to zero when no command arrived for longer.
        fault_schedule: path of a fault-schedule YAML ('' = no faults).
        ground_truth_resolution: [m] grid spacing of ``ground_truth_field``.
        vessel, world, datum, camera, current, wind, temperature: nested configs.
        gnss, imu, sonar, temperature_probe: sensor configs.
    """

    seed: int = 0
    dt: float = 0.02
    start_pose: tuple[float, ...] = (0.0, 0.0, 1.5707963267948966)
    start_time: float = 1750000000.0
    thrust_timeout: float = 0.5
    fault_schedule: str = ''
    ground_truth_resolution: float = 5.0
    vessel: VesselParams = VesselParams()
    world: WorldConfig = WorldConfig()
    datum: Datum = Datum()
    camera: CameraConfig = CameraConfig()
    current: CurrentConfig = CurrentConfig()
    wind: WindConfig = WindConfig()
    temperature: TemperatureConfig = TemperatureConfig()
    gnss: GnssConfig = GnssConfig()
    imu: ImuConfig = ImuConfig()
    sonar: SonarConfig = SonarConfig()
    temperature_probe: TemperatureProbeConfig = TemperatureProbeConfig()

    def __post_init__(self):
        if not 0.0 < self.dt <= 0.1:
            raise ValueError(f'dt must be in (0, 0.1] s, got {self.dt}')
        if len(self.start_pose) != 3 or not np.isfinite(self.start_pose).all():
            raise ValueError(f'start_pose must be finite (x, y, yaw), got {self.start_pose}')
        if not (math.isfinite(self.start_time) and self.thrust_timeout > 0.0
                and self.ground_truth_resolution > 0.0):
            raise ValueError('start_time must be finite, thrust_timeout and '
                             'ground_truth_resolution > 0')


@dataclass(frozen=True)
class SimStep:
    """What one ``Simulator.step`` produced.

    Args:
        time: [s] stamp of the end of the step.
        odometry: true state (zero covariance).
        gnss, imu, depth, temperature: readings that fell due this step, else None.
        camera_due: a camera frame is due (call ``render_camera``).
        thrust_command: (2,) [N] command after watchdog, estop and saturation.
        thrust_applied: (2,) [N] force the thrusters delivered (lag, efficiency).
        watchdog: a thruster's thrust was zeroed because no recent command arrived for it.
        estop: the emergency stop is engaged.
        active_faults: faults active during the step.
        grounded: the boat is held at the shore (water shallower than its draft).
        collision: the boat is held against an obstacle.
    """

    time: float
    odometry: PlanarOdometry
    gnss: GnssFix | None
    imu: ImuSample | None
    depth: ScalarReading | None
    temperature: ScalarReading | None
    camera_due: bool
    thrust_command: np.ndarray
    thrust_applied: np.ndarray
    watchdog: bool
    estop: bool
    active_faults: tuple[Fault, ...] = field(default=())
    grounded: bool = False
    collision: bool = False


class Simulator:
    """Deterministic (for a given ``config.seed``) simulation of one boat."""

    def __init__(self, config: SimConfig = SimConfig(), faults: FaultSchedule | None = None):
        self.config = config
        if faults is None:
            faults = (FaultSchedule.from_yaml(config.fault_schedule) if config.fault_schedule
                      else FaultSchedule())
        self.faults = faults
        self.world = World(config.world)
        x, y, yaw = config.start_pose
        depth = float(self.world.depth(x, y))
        if depth < config.vessel.draft:
            raise ValueError(f'start_pose ({x}, {y}) is in {depth:.2f} m of water, less than '
                             f'the draft {config.vessel.draft} m')
        seeds = np.random.SeedSequence(config.seed).spawn(5)
        rngs = [np.random.default_rng(s) for s in seeds]
        self.current = CurrentField(config.current, self.world)
        self.temperature = TemperatureField(config.temperature, self.current)
        self.wind = Wind(config.wind, rngs[0])
        self._gnss = Gnss(config.gnss, LocalENU(config.datum), rngs[1])
        self._imu = Imu(config.imu, rngs[2])
        self._sonar = Sonar(config.sonar, rngs[3])
        self._probe = TemperatureProbe(config.temperature_probe, rngs[4])
        self._timers = {name: RateTimer(rate) for name, rate in (
            ('gnss', config.gnss.rate_hz), ('imu', config.imu.rate_hz),
            ('sonar', config.sonar.rate_hz), ('temperature', config.temperature_probe.rate_hz),
            ('camera', config.camera.rate_hz))}
        self._camera = None
        self._obstacles = np.array([(o.x, o.y, o.radius) for o in self.world.obstacles]
                                   ).reshape(-1, 3)
        self._state = np.array([x, y, float(wrap_angle(yaw)), 0.0, 0.0, 0.0])
        self._thrust = np.zeros(2)
        self._depth = depth
        self._steps = 0
        self._command = np.zeros(2)
        self._command_time = np.full(2, -math.inf)   # per thruster: each has its own watchdog
        self._estop = False
        self._energy = 0.0       # [J] drawn by the thrusters since the start
        self._contacts = 0       # times the boat ran aground or into an obstacle
        self._last_contact = -math.inf   # [s] elapsed time of the last step in contact

    # ------------------------------------------------------------------ inputs
    @property
    def elapsed(self) -> float:
        """[s] since the start of the simulation."""
        return self._steps * self.config.dt

    @property
    def time(self) -> float:
        """[s] current stamp: ``start_time + elapsed``."""
        return self.config.start_time + self.elapsed

    def command_thrust(self, left: float, right: float):
        """Command [N] per thruster (VRX convention), stamped at the current sim time.

        Raises:
            InvalidInput: a value is NaN or infinite (the previous command stays).
        """
        if not (math.isfinite(left) and math.isfinite(right)):
            raise InvalidInput('nan', f'thrust command ({left}, {right}) is not finite')
        self._command = np.array([float(left), float(right)])
        self._command_time[:] = self.elapsed

    def command_thruster(self, index: int, thrust: float):
        """Command [N] one thruster (0 left, 1 right), as its own topic delivers it; each
        thruster's watchdog only counts its own commands.

        Raises:
            InvalidInput: the value is NaN or infinite (the previous command stays).
        """
        if not math.isfinite(thrust):
            raise InvalidInput('nan', f'thrust command {thrust} for thruster {index} is not finite')
        self._command[index] = float(thrust)
        self._command_time[index] = self.elapsed

    def set_estop(self, engaged: bool):
        """Engage (True) or release (False) the emergency stop."""
        self._estop = bool(engaged)

    def inject_fault(self, fault: Fault):
        """Add a fault at run time (its onset is in elapsed seconds)."""
        self.faults.add(fault)

    # ------------------------------------------------------------------ outputs
    @property
    def energy_j(self) -> float:
        """[J] electrical energy the thrusters drew since the start
        (``vessel.thruster_power`` of the thrust they delivered)."""
        return self._energy

    @property
    def contacts(self) -> int:
        """Number of times the boat ran aground or against an obstacle: one per contact,
        however long it lasts (steps in contact less than ``CONTACT_GAP_S`` apart are the
        same contact: a boat pushing on is held and touches again every other step)."""
        return self._contacts

    def true_odometry(self) -> PlanarOdometry:
        """True state at ``time`` (zero covariance)."""
        x, y, yaw, u, v, r = self._state.tolist()
        return PlanarOdometry(self.time, x, y, yaw, u, v, r)

    def active_faults(self) -> list[Fault]:
        """Faults active now."""
        return self.faults.active(self.elapsed)

    def step(self) -> SimStep:
        """Advance by ``dt``; return the truth and the readings that fell due."""
        c = self.config
        t0 = self.elapsed
        faults = self.faults.active(t0) if self.faults.faults else []
        effects = self.faults.effects(t0) if faults else NO_EFFECTS
        stale = t0 - self._command_time > c.thrust_timeout
        watchdog = bool(stale.any())
        command = np.zeros(2) if self._estop else vessel.saturate_thrust(
            np.where(stale, 0.0, self._command), c.vessel)
        old = self._state
        current = self.current.velocity(old[0], old[1], t0, depth=self._depth)
        wind = self.wind.velocity
        current = np.array([float(current[0]), float(current[1])])
        substeps = max(1, math.ceil(c.dt * effects.drag_scale / _MAX_DT_DRAG))
        new = old
        for _ in range(substeps):  # only a heavy 'stuck' fault needs more than one
            new, self._thrust = vessel.step(
                new, self._thrust, command, current, wind, c.dt / substeps, c.vessel,
                effects.thrust_efficiency, effects.drag_scale)
        left, right = self._thrust.tolist()
        self._energy += c.vessel.thruster_power_coefficient * (
            abs(left) ** 1.5 + abs(right) ** 1.5) * c.dt
        self.wind.advance(c.dt)
        new[2] = (new[2] + math.pi) % (2.0 * math.pi) - math.pi
        depth = float(self.world.depth(new[0], new[1]))
        grounded = depth < c.vessel.draft
        collision = False
        if len(self._obstacles):
            gap = np.hypot(self._obstacles[:, 0] - new[0], self._obstacles[:, 1] - new[1])
            collision = bool((gap < self._obstacles[:, 2] + c.vessel.hull_radius).any())
        if grounded or collision:
            self._contacts += t0 - self._last_contact > CONTACT_GAP_S
            self._last_contact = t0
            # Held at the last free position; it may still turn and back off.
            new[0], new[1], new[3], new[4] = old[0], old[1], 0.0, 0.0
            depth = self._depth
        self._state, self._depth = new, depth
        self._steps += 1
        t = self.elapsed
        stamp = self.time
        self.temperature.advance(t)
        x, y, yaw, u, v, r = new.tolist()
        timers = self._timers
        imu = None
        if timers['imu'].due(t):
            # Body acceleration over ground: d(nu)/dt + omega x nu (finite difference).
            du, dv = (u - old[3]) / c.dt, (v - old[4]) / c.dt
            imu = self._imu.measure(stamp, yaw, r, (du - r * v, dv + r * u), effects)
        gnss = self._gnss.measure(stamp, x, y, effects) if timers['gnss'].due(t) else None
        sonar = (self._sonar.measure(stamp, depth, effects) if timers['sonar'].due(t)
                 else None)
        temperature = None
        if timers['temperature'].due(t):
            temperature = self._probe.measure(
                stamp, float(self.temperature.temperature(x, y, depth=depth)))
        return SimStep(
            time=stamp, odometry=PlanarOdometry(stamp, x, y, yaw, u, v, r), gnss=gnss,
            imu=imu, depth=sonar, temperature=temperature,
            camera_due=timers['camera'].due(t), thrust_command=command,
            thrust_applied=self._thrust * effects.thrust_efficiency, watchdog=watchdog,
            estop=self._estop, active_faults=tuple(faults), grounded=grounded,
            collision=collision)

    def _renderer(self) -> CameraRenderer:
        if self._camera is None:  # built on first use: the sky/textures take a while
            self._camera = CameraRenderer(self.config.camera, self.world, self.config.seed)
        return self._camera

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        """Camera frame at the current pose: (rgb (H, W, 3) uint8, navigable (H, W) bool)."""
        x, y, yaw = self._state[:3].tolist()
        return self._renderer().render(x, y, yaw, self.elapsed)

    def camera_intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) [px] of the simulated camera."""
        return self._renderer().intrinsics()

    def ground_truth_field(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """True field on a regular grid over the world, NaN on land.

        Args:
            name: ``'bathymetry'`` (depth [m]) or ``'temperature'`` ([degC], now).

        Returns:
            (x, y, value), each (ny, nx): map coordinates [m] of the grid points and the
            field there.
        """
        if name not in ('bathymetry', 'temperature'):
            raise ValueError(f"unknown field {name!r} (known: 'bathymetry', 'temperature')")
        xmin, xmax, ymin, ymax = self.world.extent
        res = self.config.ground_truth_resolution
        x, y = np.meshgrid(np.arange(xmin, xmax + 0.5 * res, res),
                           np.arange(ymin, ymax + 0.5 * res, res))
        depth = self.world.depth(x, y)
        value = depth if name == 'bathymetry' else self.temperature.temperature(x, y, depth)
        return x, y, np.where(depth > 0.0, value, np.nan)
