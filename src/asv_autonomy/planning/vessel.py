"""3-DOF (surge, sway, yaw) surface-vessel model shared by the simulator and the planner.

Fossen-style manoeuvring model (Fossen, *Handbook of Marine Craft Hydrodynamics and Motion
Control*, 2011, ch. 6-8 and 10.3) of a small twin-hull survey ASV driven by two stern
thrusters:

    M nu_r' + C(nu_r) nu_r + drag_scale * D(nu_r) nu_r = tau_thrust + tau_wind
    nu' = nu_r' + nu_c'        (nu_c: water current in the body frame)
    eta' = R(yaw) nu

with ``M = diag(m + a_u, m + a_v, I_z + a_r)`` (rigid body + added mass), ``C`` the
rigid-body + added-mass Coriolis/centripetal matrix of a diagonal ``M`` (it does no work:
``nu^T C(nu) nu = 0``) and ``D`` linear + quadratic damping, all acting on the velocity
relative to the water. Writing the rigid-body terms in relative velocity is exact for an
irrotational current that is locally uniform and steady (Fossen 2011, property 10.1); the
spatial/temporal gradients of the current are neglected, as is usual at this scale.

Wind acts on the apparent wind (wind minus ground velocity) with quadratic drag on
frontal/lateral windage areas and a yaw moment from the lateral force acting at the
centre of pressure (aft of the CG => the bow weathervanes into the wind).

Thrusters: first-order lag towards the saturated command (asymmetric limits: propellers
are weaker in reverse), then a per-side efficiency (1 = healthy, 0 = failed).

All functions work on batched tensors of any leading shape ``(...)`` and are
dtype/device agnostic: pass ``torch.Tensor`` (planner, thousands of rollouts) or
``numpy.ndarray`` (simulator). A single numpy state of shape ``(6,)`` takes a scalar fast
path (Python float arithmetic), because numpy/torch per-op overhead on tiny arrays would
dominate the simulator step. This module does not import torch (the simulator process
does not need it); tensors are recognised once their caller has imported torch.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class VesselParams:
    """Parameters of a small (~1.4 m, 30 kg) twin-hull survey ASV (Heron/BlueBoat class).

    Where the defaults come from:

    * Mass/size: Clearpath Heron (1.35 x 0.98 m, 28 kg) and Blue Robotics BlueBoat
      (1.2 x 1.0 m, 15 kg dry, up to 15 kg payload): 30 kg with survey payload.
      ``inertia_z`` ~ m (L^2/12 + y_hull^2) with the mass in two pontoons at +/-0.35 m.
    * Added mass: engineering fractions for slender twin hulls (strip-theory estimates in
      Fossen 2011, 6.4): ~10 % of m in surge, ~50 % in sway, ~25 % of I_z in yaw.
    * Thrusters: Blue Robotics T200 datasheet at 16 V: 5.25 kgf (51 N) forward,
      4.1 kgf (40 N) reverse; derated to 45 N / 35 N for battery sag.
      ``thruster_y``: hull centreline spacing of a ~1 m beam. Time constant: T200 spin-up.
    * Damping: chosen so full forward thrust (2 x 45 N) gives 2.0 m/s in calm water
      (15 u + 15 u^2 = 90 N; Heron tops out at 1.7 m/s, BlueBoat at ~3 m/s). Sway damping
      is several times surge damping (hull side area), yaw damping gives ~1.5 rad/s turn in
      place at full differential thrust.
    * Directional stability: the sway damping acts at the centre of lateral resistance
      ``lateral_resistance_x`` (stern skegs/keels, aft of the CG), which gives the coupled
      Y_r / N_v damping terms. Without it the Munk moment (m22 - m11) u v makes the bare
      hull directionally unstable: with equal thrust a gust would spin it into a tight
      circle. Linearised at 2 m/s the sway-yaw subsystem is stable with these defaults.
    * Windage: above-water areas of a Heron-sized deck + sensor mast, drag coefficients
      of bluff bodies (~0.8-0.9), air density at 15 degC.

    Args:
        mass: [kg] rigid-body mass.
        inertia_z: [kg m^2] yaw moment of inertia about the CG.
        added_mass_surge, added_mass_sway: [kg] (-X_udot, -Y_vdot, positive numbers).
        added_mass_yaw: [kg m^2] (-N_rdot).
        damping_surge_linear: [N s/m]; damping_surge_quadratic: [N s^2/m^2].
        damping_sway_linear: [N s/m]; damping_sway_quadratic: [N s^2/m^2].
        damping_yaw_linear: [N m s/rad]; damping_yaw_quadratic: [N m s^2/rad^2].
        thruster_y: [m] lateral offset of each thruster from the centreline (+/-).
        max_thrust_forward: [N] per thruster.
        max_thrust_reverse: [N] per thruster, positive number.
        thruster_time_constant: [s] first-order lag of the thrust.
        draft: [m] hull draft; the simulator grounds the boat in shallower water.
        hull_radius: [m] radius of a circle enclosing the hull (collision checks).
        windage_area_frontal, windage_area_lateral: [m^2] above-water projected areas.
        wind_drag_coefficient_x, wind_drag_coefficient_y: [-] bluff-body drag coefficients.
        lateral_resistance_x: [m] longitudinal position where the sway damping acts
            (negative = aft of the CG).
        windage_center_x: [m] longitudinal centre of lateral wind pressure (negative = aft).
        air_density: [kg/m^3].
        thruster_power_coefficient: [W/N^1.5] electrical power of one thruster is
            ``k |T|^1.5`` (momentum theory: ideal power grows with thrust^1.5); the default
            fits the T200 datasheet at 16 V (51 N forward at ~390 W).
    """

    mass: float = 30.0
    inertia_z: float = 8.0
    added_mass_surge: float = 3.0
    added_mass_sway: float = 15.0
    added_mass_yaw: float = 2.0
    damping_surge_linear: float = 15.0
    damping_surge_quadratic: float = 15.0
    damping_sway_linear: float = 60.0
    damping_sway_quadratic: float = 60.0
    damping_yaw_linear: float = 8.0
    damping_yaw_quadratic: float = 6.0
    thruster_y: float = 0.35
    max_thrust_forward: float = 45.0
    max_thrust_reverse: float = 35.0
    thruster_time_constant: float = 0.2
    draft: float = 0.15
    hull_radius: float = 0.75
    lateral_resistance_x: float = -0.35
    windage_area_frontal: float = 0.25
    windage_area_lateral: float = 0.45
    wind_drag_coefficient_x: float = 0.8
    wind_drag_coefficient_y: float = 0.9
    windage_center_x: float = -0.1
    air_density: float = 1.225
    thruster_power_coefficient: float = 1.055

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value):
                raise ValueError(f'VesselParams.{f.name} must be finite, got {value}')
            if f.name not in ('windage_center_x', 'lateral_resistance_x') and value < 0.0:
                raise ValueError(f'VesselParams.{f.name} must be >= 0, got {value}')
        for name in ('mass', 'inertia_z', 'thruster_y', 'max_thrust_forward',
                     'thruster_time_constant'):
            if getattr(self, name) <= 0.0:
                raise ValueError(f'VesselParams.{name} must be > 0, got {getattr(self, name)}')

    @property
    def m11(self) -> float:
        """[kg] surge inertia incl. added mass."""
        return self.mass + self.added_mass_surge

    @property
    def m22(self) -> float:
        """[kg] sway inertia incl. added mass."""
        return self.mass + self.added_mass_sway

    @property
    def m33(self) -> float:
        """[kg m^2] yaw inertia incl. added mass."""
        return self.inertia_z + self.added_mass_yaw


class _Scalar:
    """Ops for one numpy state of shape (6,), unpacked into Python floats."""

    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)

    @staticmethod
    def unpack(x):
        return x.tolist() if isinstance(x, np.ndarray) else x

    @staticmethod
    def clamp(x, lo, hi):
        return min(max(x, lo), hi)

    @staticmethod
    def stack(items):
        return np.array(items, dtype=float)


class _Numpy:
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)

    @staticmethod
    def unpack(x):
        return [x[..., i] for i in range(x.shape[-1])] if isinstance(x, np.ndarray) else x

    @staticmethod
    def clamp(x, lo, hi):
        # Two ufuncs are cheaper than np.clip's dispatch on small arrays.
        return np.minimum(np.maximum(x, lo), hi)

    @staticmethod
    def stack(items):
        return np.stack(np.broadcast_arrays(*items), axis=-1)


class _Torch:
    """Ops for torch tensors, via tensor methods so this module never imports torch."""

    @staticmethod
    def sin(x):
        return x.sin()

    @staticmethod
    def cos(x):
        return x.cos()

    @staticmethod
    def unpack(x):
        return x.unbind(-1) if _is_tensor(x) else x

    @staticmethod
    def clamp(x, lo, hi):
        return x.clamp(lo, hi)

    @staticmethod
    def stack(items):
        # Component-major storage, seen as (..., n): the next step's unbind(-1) then reads
        # each component contiguously, which lets torch.compile vectorise the whole step
        # (interleaved (K, 6) rows kept it to scalar code: 1.25x slower at K = 1024).
        torch = sys.modules['torch']
        return torch.stack(torch.broadcast_tensors(*items), dim=0).movedim(0, -1)


def _is_tensor(x) -> bool:
    # A tensor can only exist once its caller imported torch; the simulator never does.
    torch = sys.modules.get('torch')
    return torch is not None and isinstance(x, torch.Tensor)


def _ops(state):
    if isinstance(state, np.ndarray):
        return _Scalar if state.ndim == 1 else _Numpy
    if _is_tensor(state):
        return _Torch
    raise TypeError(f'state must be a torch.Tensor or numpy.ndarray, got {type(state)}')


def _pair(ops, value):
    """(left, right) or (east, north) components of a (..., 2) array, or a scalar twice."""
    if isinstance(value, (int, float)):
        return value, value
    first, second = ops.unpack(value)
    return first, second


def _accelerations(ops, state, thrust_left, thrust_right, current, wind, params, drag_scale):
    """Time derivative of the 6 state components (list of components), see module doc."""
    _, _, yaw, u, v, r = state
    c, s = ops.cos(yaw), ops.sin(yaw)
    cur_e, cur_n = current
    wind_e, wind_n = wind
    # Velocity relative to the water, in the body frame.
    u_c = c * cur_e + s * cur_n
    v_c = -s * cur_e + c * cur_n
    ur, vr = u - u_c, v - v_c
    # Apparent wind in the body frame (air velocity minus ground velocity).
    uw = c * wind_e + s * wind_n - u
    vw = -s * wind_e + c * wind_n - v
    p = params
    half_rho = 0.5 * p.air_density
    wind_x = half_rho * p.wind_drag_coefficient_x * p.windage_area_frontal * uw * abs(uw)
    wind_y = half_rho * p.wind_drag_coefficient_y * p.windage_area_lateral * vw * abs(vw)
    m11, m22, m33 = p.m11, p.m22, p.m33
    damp_u = (p.damping_surge_linear + p.damping_surge_quadratic * abs(ur)) * ur
    # Sway damping acts at the centre of lateral resistance, on the sway velocity there.
    v_lat = vr + p.lateral_resistance_x * r
    damp_v = (p.damping_sway_linear + p.damping_sway_quadratic * abs(v_lat)) * v_lat
    damp_r = ((p.damping_yaw_linear + p.damping_yaw_quadratic * abs(r)) * r
              + p.lateral_resistance_x * damp_v)
    # The right thruster sits at y = -thruster_y (FLU): its forward push turns CCW.
    tau_u = thrust_left + thrust_right + wind_x
    tau_v = wind_y
    tau_r = p.thruster_y * (thrust_right - thrust_left) + p.windage_center_x * wind_y
    # M nu_r' = tau - C(nu_r) nu_r - D nu_r, with C nu = [-m22 v r, m11 u r, (m22 - m11) u v].
    dur = (tau_u + m22 * vr * r - drag_scale * damp_u) / m11
    dvr = (tau_v - m11 * ur * r - drag_scale * damp_v) / m22
    dr = (tau_r - (m22 - m11) * ur * vr - drag_scale * damp_r) / m33
    # nu = nu_r + R^T V_c and d/dt (R^T V_c) = [r v_c, -r u_c] for a steady current.
    return [c * u - s * v, s * u + c * v, r, dur + r * v_c, dvr - r * u_c, dr]


def vessel_derivative(state, thrust, current, wind, params: VesselParams,
                      thrust_efficiency=1.0, drag_scale=1.0):
    """Time derivative of the vessel state for a given thrust acting on the hull.

    Args:
        state: [x [m], y [m], yaw [rad], u [m/s], v [m/s], r [rad/s]]; position/yaw in
            ``map`` (ENU), velocities over ground in the body frame (FLU).
        thrust: [left, right] force [N] delivered by each thruster (not saturated here).
        current: water velocity (east, north) [m/s] at the vessel.
        wind: air velocity (east, north) [m/s] at the vessel.
        params: vessel parameters.
        thrust_efficiency: multiplier per thruster (scalar or ``(..., 2)``), 0 = failed.
        drag_scale: multiplier on hydrodynamic damping (scalar or ``(...)``), e.g. weeds.

    Returns:
        d(state)/dt with the units of ``state`` per second.

    Shapes:
        state ``(..., 6)``, thrust/current/wind/thrust_efficiency ``(..., 2)``
        (broadcastable) -> ``(..., 6)``.
    """
    ops = _ops(state)
    eff_l, eff_r = _pair(ops, thrust_efficiency)
    left, right = _pair(ops, thrust)
    return ops.stack(_accelerations(ops, ops.unpack(state), eff_l * left, eff_r * right,
                                    _pair(ops, current), _pair(ops, wind), params,
                                    drag_scale))


def saturate_thrust(thrust_command, params: VesselParams):
    """Clamp a thrust command to the thruster limits [-max_thrust_reverse, max_thrust_forward].

    Shapes:
        ``(..., 2)`` -> ``(..., 2)``
    """
    ops = _Torch if _is_tensor(thrust_command) else _Numpy
    return ops.clamp(thrust_command, -params.max_thrust_reverse, params.max_thrust_forward)


def thruster_power(thrust, params: VesselParams):
    """[W] electrical power drawn by thrusters delivering ``thrust`` [N] (each, summed
    over the last axis): ``k * |T|^1.5`` per thruster (see ``thruster_power_coefficient``).

    Shapes:
        ``(..., 2)`` -> ``(...)``.
    """
    if _is_tensor(thrust):
        return params.thruster_power_coefficient * thrust.abs().pow(1.5).sum(-1)
    return params.thruster_power_coefficient * (np.abs(thrust) ** 1.5).sum(-1)


def step(state, thrust_actual, thrust_command, current, wind, dt: float,
         params: VesselParams, thrust_efficiency=1.0, drag_scale=1.0):
    """Advance the vessel by ``dt`` with classical (explicit) RK4.

    Damping makes the system stiff: with the default parameters RK4 stays stable while
    ``dt * drag_scale <= 0.6 s`` at 2 m/s surge, 1 m/s sway, 1.5 rad/s yaw rate, but only
    up to 0.21 s over surge -1.5..2.5 m/s, sway +-1.5 m/s, yaw rate +-2 rad/s (worst:
    reversing while side-slipping and turning; eigenvalues of the velocity Jacobian
    against RK4's stability region); take smaller steps beyond that (the simulator and
    the rollouts sub-step, ``rollout.stable_substeps``).

    The thruster lag is integrated exactly: over the step the delivered thrust follows
    ``T(t) = T_c + (T_0 - T_c) exp(-t / tau)`` towards the saturated command ``T_c``, and
    each RK4 stage uses its value at the stage time.

    Args:
        state: vessel state, see :func:`vessel_derivative`.
        thrust_actual: [N] thrust currently delivered by each thruster (lag state).
        thrust_command: [N] commanded thrust (saturated here).
        current, wind: (east, north) [m/s], held constant over the step.
        dt: [s] step length.
        params: vessel parameters.
        thrust_efficiency: per-thruster multiplier on the delivered force (faults).
        drag_scale: multiplier on hydrodynamic damping (faults).

    Returns:
        (new state, new thrust_actual).

    Shapes:
        state ``(..., 6)``, thrust_* ``(..., 2)`` -> (``(..., 6)``, ``(..., 2)``).
    """
    ops = _ops(state)
    command = saturate_thrust(thrust_command, params)
    gap = thrust_actual - command
    decay_half = math.exp(-0.5 * dt / params.thruster_time_constant)
    thrust_mid = command + gap * decay_half
    thrust_end = command + gap * (decay_half * decay_half)
    eff_l, eff_r = _pair(ops, thrust_efficiency)
    current, wind = _pair(ops, current), _pair(ops, wind)

    def derivative(x, thrust):
        left, right = _pair(ops, thrust)
        return _accelerations(ops, x, eff_l * left, eff_r * right, current, wind, params,
                              drag_scale)

    # RK4 on the unpacked components: on the scalar path these are Python floats.
    x0 = ops.unpack(state)
    k1 = derivative(x0, thrust_actual)
    k2 = derivative([a + (0.5 * dt) * k for a, k in zip(x0, k1)], thrust_mid)
    k3 = derivative([a + (0.5 * dt) * k for a, k in zip(x0, k2)], thrust_mid)
    k4 = derivative([a + dt * k for a, k in zip(x0, k3)], thrust_end)
    h = dt / 6.0
    new = [a + h * (d1 + 2.0 * (d2 + d3) + d4) for a, d1, d2, d3, d4 in zip(x0, k1, k2, k3, k4)]
    return ops.stack(new), thrust_end
