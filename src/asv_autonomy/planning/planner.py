"""The planner: an MDP value function under currents as the long-range guide, a sampling-based
policy optimiser for the thrust commands, informative sampling for surveys, and reactions
to the boat's health.

Per call of :meth:`Planner.plan` (the control rate):

1. health: a failed/degraded thruster changes the model the MDP and the rollouts use
   (re-solve); GPS lost -> hold the last position at low speed; stuck -> back out;
2. goal: ``goto`` -> the operator's goal; ``survey`` -> the next sampling goal, chosen by
   information per unit cost (``informative.py``) within the distance budget;
3. the MDP's value-to-go to that goal (solved once per goal/health change, kernel or
   finite elements) is the terminal cost of the optimiser's rollouts
   (``use_mdp=False``: straight-line time to the goal, the ``asv-no-mdp`` ablation);
4. the optimiser (``mppi.MPPI`` or the ``pytorch-mppi`` peer) returns the thrust command.
"""
from __future__ import annotations

import logging
import math
import time
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..measurements import InvalidInput, PlanarOdometry
from .baseline import _polygon
from .costs import CostWeights
from .flow import FlowField
from .health import VehicleHealth
from .informative import CoverageModel, candidate_points, choose_goal, gain_at
from .mdp import MDPConfig, MDPProblem, calm_water_price, max_steady_speed, solve
from .mppi import MPPIConfig
from .peers import OPTIMISERS, make_optimiser
from .raster import Raster
from .rollout import Scene
from .vessel import VesselParams
from .workspace import Workspace

_LOG = logging.getLogger(__name__)

MODES = ('survey', 'goto')
# [m/s] bound of the online current correction (a GPS jump must not invent a river).
MAX_CURRENT_CORRECTION = 1.5
MDP_METHODS = ('kernel', 'fem', 'grid')


@dataclass(frozen=True)
class PlannerConfig:
    """Mission, MDP, optimiser and reaction settings.

    Args:
        mode: ``'survey'`` (informative sampling inside ``survey_polygon``) or ``'goto'``
            (drive to the goal set with :meth:`Planner.set_goal`, then hold).
        survey_polygon: [m] convex survey area in ``map``, flat (x0, y0, x1, y1, ...).
        survey_budget: [m] distance the survey may travel (0: unlimited).
        candidate_spacing: [m] spacing of the candidate sampling goals.
        candidate_inset: [m] margin between candidates and the polygon edges.
        footprint: [m] radius of the map variance one sample removes (coverage model and
            gain of a candidate: about the mapping GP's lengthscale).
        information_cost_offset: [cost] added to every candidate's value-to-go so that a
            candidate next to the boat does not win by its tiny cost alone.
        use_mdp: the MDP value-to-go is the rollouts' terminal cost (False: straight-line
            time to the goal, the ``asv-no-mdp`` ablation).
        mdp_method: ``'kernel'`` (mesh-free), ``'fem'`` (finite elements) or ``'grid'``
            (value iteration on a regular grid).
        value_resolution: [m] grid of the value raster the rollouts read.
        optimiser: ``'asv'`` (this project's compiled MPPI) or ``'pytorch-mppi'`` (peer).
        acceptance_radius: [m] a goal counts as reached within this distance.
        hold_radius: [m] goto: holding at the goal (zero thrust) until the boat drifts
            farther than this.
        background_solve: solve the MDPs in a worker thread so the control loop never
            waits (the node); until a solve is ready the rollouts steer by straight-line
            time. False: solve in the calling thread (benchmarks, deterministic).
        prefetch_distance: [m] survey: this close to the sampling goal, the travel costs
            from it to the next candidates start solving, so they are ready on arrival.
        current_estimation_time: [s] time constant of the online correction of the
            expected current from the boat's drift (0 = off; it learns a uniform unexpected
            current in tests, but did not rescue the benchmark's failed gyre approach, so
            it is not on by default).
        information_weight: [cost per (uncertainty s)] reward in the rollouts for passing
            uncertain map cells (survey mode only).
        time_budget: [s] goto: time allowed to reach a goal, counted from the first call
            after it was set (0: none). The MDP trades time for energy at the forecast
            current; in a stronger one its pace can miss the budget, so from the second
            ``pace_window`` on, the planner projects the arrival from the value-to-go it
            made good over the last window and, when that lies beyond 90 % of the budget,
            doubles the MDP's time weight (up to ``max_hurry`` times; at most once a
            window) and re-solves: energy is given up for arrival.
        pace_window: [s] see ``time_budget``.
        max_hurry: largest factor on the MDP's time weight (1: never hurry).
        gps_lost_speed: [m/s] speed limit while GPS is lost (the boat holds its position).
        stuck_time: [s] forward thrust above half the limit with speed over ground below
            ``stuck_speed`` for this long -> back out.
        stuck_speed: [m/s] see ``stuck_time``.
        backout_time: [s] reverse thrust duration when backing out.
        mdp, mppi, weights: nested settings of the MDP, the optimiser and the cost terms.
    """

    mode: str = 'survey'
    survey_polygon: tuple[float, ...] = (-80.0, -60.0, 80.0, -60.0, 80.0, 60.0, -80.0, 60.0)
    survey_budget: float = 0.0
    candidate_spacing: float = 15.0
    candidate_inset: float = 5.0
    footprint: float = 12.0
    information_cost_offset: float = 20.0
    use_mdp: bool = True
    mdp_method: str = 'fem'
    value_resolution: float = 5.0
    optimiser: str = 'asv'
    acceptance_radius: float = 3.0
    hold_radius: float = 6.0
    background_solve: bool = False
    prefetch_distance: float = 15.0
    current_estimation_time: float = 0.0
    information_weight: float = 0.5
    time_budget: float = 0.0
    pace_window: float = 120.0
    max_hurry: float = 8.0
    gps_lost_speed: float = 0.3
    stuck_time: float = 5.0
    stuck_speed: float = 0.15
    backout_time: float = 4.0
    mdp: MDPConfig = field(default_factory=lambda: MDPConfig(goal_radius=20.0))
    mppi: MPPIConfig = MPPIConfig()
    weights: CostWeights = CostWeights()

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f'optimiser must be one of {sorted(OPTIMISERS)}, got '
                             f'{self.optimiser!r}')
        if self.mdp_method not in MDP_METHODS:
            raise ValueError(f'mdp_method must be one of {MDP_METHODS}, got '
                             f'{self.mdp_method!r}')
        for name in ('candidate_spacing', 'footprint', 'value_resolution', 'acceptance_radius',
                     'gps_lost_speed', 'stuck_time', 'stuck_speed', 'backout_time',
                     'pace_window'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be a finite number > 0, got {value}')
        for name in ('survey_budget', 'candidate_inset', 'prefetch_distance',
                     'current_estimation_time', 'information_cost_offset',
                     'information_weight', 'time_budget'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'{name} must be finite and >= 0, got {value}')
        if not (math.isfinite(self.max_hurry) and self.max_hurry >= 1.0):
            raise ValueError(f'max_hurry must be finite and >= 1, got {self.max_hurry}')
        if not self.hold_radius > self.acceptance_radius:
            raise ValueError('hold_radius must be larger than acceptance_radius')
        _polygon(self.survey_polygon)


@dataclass(frozen=True)
class PlannerCommand:
    """One control output.

    Args:
        thrust_left, thrust_right: [N] within the thruster limits.
        path: [m] (N, 2) expected positions along the optimised rollout (the horizon
            ahead; holding, stuck or without a goal: where the boat is, where it backs to).
        goal: [m] (x, y) the goal being steered to.
        mode: ``'survey'``, ``'goto'``, ``'hold'`` (GPS lost), ``'backout'`` (stuck).
        done: survey finished / goal reached and holding (thrust zero).
        solve_s: [s] wall time of the optimisation (0 when none ran).
    """

    thrust_left: float
    thrust_right: float
    path: np.ndarray
    goal: tuple[float, float]
    mode: str
    done: bool
    solve_s: float = 0.0


class Planner:
    """Plans thrust commands for a twin-thruster boat; call :meth:`plan` at the control
    rate with the latest odometry.

    Args:
        config: planner settings.
        vessel: the boat model shared with the simulator.
        workspace: where the boat may go (land, obstacles).
        flow: mean current and its spread.
        device: where the value functions and rollouts run.
    """

    def __init__(self, config: PlannerConfig, vessel: VesselParams, workspace: Workspace,
                 flow: FlowField, device: str | torch.device = 'cpu'):
        self.config = config
        self.vessel = vessel
        self.device = torch.device(device)
        self._base_workspace = workspace.to(self.device)
        self.workspace = self._base_workspace
        self.flow = flow.to(self.device)
        # One currency: the rollouts' running costs in the MDP's units (seconds), so its
        # value-to-go can be their terminal cost; without one (a solve still running,
        # holding position), a metre towards the goal costs what the MDP charges for a
        # calm-water metre, not the time alone: else progress is worth less than the
        # energy it takes and the boat crawls.
        weights = replace(config.weights, information=config.information_weight)
        if config.use_mdp:
            weights = replace(weights, energy=config.mdp.energy_weight / config.mdp.time_weight,
                              nominal_speed=1.0 / calm_water_price(config.mdp, vessel))
        self.optimiser = make_optimiser(config.optimiser, config.mppi, vessel, weights,
                                        self.device)
        self.health = VehicleHealth()
        self.mode = config.mode
        self._goal: np.ndarray | None = None
        self._solves = SolveCache(config.background_solve)
        self._distance_travelled = 0.0
        self._last_xy: np.ndarray | None = None
        self._last_stamp = math.nan
        self._thrust = np.zeros(2)
        self._holding = False
        self._first_anchor: np.ndarray | None = None
        self._current_bias = np.zeros(2)
        self._expected = None
        self._homed = {}   # value rasters with the goal disc priced, by solve and current
        self._hold_point: np.ndarray | None = None
        self._slow_since: float | None = None
        self._backout_until = -math.inf
        self._hurry = 1.0               # factor on the MDP's time weight (time_budget)
        self._goal_since: float | None = None
        self._hurried_at = -math.inf
        self._pace_track: list[tuple[float, np.ndarray]] = []
        polygon = _polygon(config.survey_polygon)
        candidates = candidate_points(polygon, config.candidate_spacing, config.candidate_inset)
        if len(candidates):
            free = workspace.is_water(torch.as_tensor(candidates, dtype=torch.float32),
                                      vessel.hull_radius + config.acceptance_radius)
            candidates = candidates[free.cpu().numpy()]
        self._candidates = candidates
        low, high = polygon.min(axis=0), polygon.max(axis=0)
        self.coverage = CoverageModel((low[0], high[0], low[1], high[1]),
                                      config.footprint / 3.0, config.footprint)
        self._information: Raster | None = None
        self._survey_done = config.mode == 'survey' and not len(candidates)

    # ------------------------------------------------------------------ inputs
    def set_goal(self, x: float, y: float) -> None:
        """Switch to ``goto`` and drive to (x, y) [m] in ``map``, then hold there."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f'goal must be finite, got ({x}, {y})')
        self.mode = 'goto'
        self._set_goal(np.array([x, y], float))

    def set_information(self, information: Raster | None) -> None:
        """The map's uncertainty (1-sigma, channel 0) from the mapping node; None: use the
        planner's own coverage model. It is resampled onto the coverage model's grid: the
        rollouts' compiled step is specialised to raster shapes, and the mapping node's
        grid grows with the surveyed area."""
        if information is None:
            self._information = None
            return
        centres = self.coverage.raster().cell_centres()
        values = information.to(self.device).sample(centres.to(self.device))[..., 0]
        self._information = Raster(values, self.coverage.origin, self.coverage.resolution,
                                   device=self.device)

    def set_blocked(self, occupancy: np.ndarray | None, origin=(0.0, 0.0),
                    resolution: float = 1.0) -> None:
        """Cells perception sees blocked: an occupancy grid (H, W) (>= 50 blocked, -1
        unknown) whose cell (0, 0) is centred at ``origin`` [m], cells of ``resolution``
        [m]; None clears them. They join land in the rollouts' costs (replacing the
        previous ones). The MDP keeps the static
        workspace: perception sees tens of metres ahead and changes every frame, the value
        function guides over the whole lake and is solved once per goal."""
        self.workspace = (self._base_workspace if occupancy is None else
                          self._base_workspace.with_blocked(occupancy, origin, resolution))

    def set_health(self, health: VehicleHealth) -> None:
        """React to a change of the boat's health (see the module doc)."""
        if health.gps_ok and not self.health.gps_ok:
            self._hold_point = None
        if health.stuck and not self.health.stuck and math.isfinite(self._last_stamp):
            self._backout_until = self._last_stamp + self.config.backout_time
            self.optimiser.reset()
        self.health = health

    def warm_up(self) -> float:
        """Run the optimiser once on a dummy problem so that its compilation happens now,
        not in the first control period; returns the seconds it took."""
        start = time.perf_counter()
        x_min, x_max, y_min, y_max = self.workspace.extent
        centre = torch.tensor([(x_min + x_max) / 2, (y_min + y_max) / 2])
        scene = Scene(flow=self.flow.raster, distance=self.workspace.distance,
                      goal=centre.to(self.device), clearance=self.vessel.hull_radius,
                      information=self.coverage.raster().to(self.device),
                      thrust_efficiency=(1.0, 1.0), max_speed=math.inf)
        self.optimiser.optimise(torch.cat([centre, torch.zeros(4)]), torch.zeros(2), scene)
        self.optimiser.reset()
        return time.perf_counter() - start

    @property
    def distance_travelled(self) -> float:
        """[m] along the odometry track since the start."""
        return self._distance_travelled

    @property
    def goal(self) -> tuple[float, float] | None:
        return None if self._goal is None else (float(self._goal[0]), float(self._goal[1]))

    # ------------------------------------------------------------------ planning
    def plan(self, odom: PlanarOdometry) -> PlannerCommand:
        """Thrust commands for the current odometry.

        Raises:
            InvalidInput: 'nan' when the odometry has a non-finite field.
        """
        state = np.array([odom.x, odom.y, odom.yaw, odom.u, odom.v, odom.r], float)
        if not (np.isfinite(state).all() and math.isfinite(odom.stamp)):
            raise InvalidInput('nan', f'non-finite odometry {odom}')
        xy = state[:2]
        if self.health.gps_ok:
            self._estimate_current(xy, odom.stamp)
        self._track(xy, odom.stamp)
        if not self.health.gps_ok:
            return self._hold(state)
        if self._stuck(odom) or odom.stamp < self._backout_until:
            return self._backout(state, odom.stamp)
        goal = self._current_goal(xy)
        if goal is None:   # survey finished, or its first goal is still being solved
            self._thrust = np.zeros(2)
            done = self._survey_done or self.mode == 'goto'
            return PlannerCommand(0.0, 0.0, xy[None], tuple(xy), self.mode, done)
        distance = float(np.hypot(*(goal - xy)))
        if self.mode == 'goto':
            self._keep_pace(xy, odom.stamp, goal)
            if self._holding and distance > self.config.hold_radius:
                self._holding = False
            elif not self._holding and distance < self.config.acceptance_radius:
                self._holding = True
            if self._holding:
                self._thrust = np.zeros(2)
                return PlannerCommand(0.0, 0.0, xy[None], tuple(goal), 'goto', True)
        return self._optimise(state, goal, self.mode, max_speed=math.inf)

    def _planning_flow(self) -> Raster:
        """The current the rollouts plan with: the forecast plus the online correction."""
        flow = self.flow.raster
        if self.config.current_estimation_time > 0.0:
            offset = torch.zeros(3, 1, 1, device=self.device)
            offset[:2, 0, 0] = torch.as_tensor(self._current_bias, dtype=offset.dtype)
            flow = Raster(flow.values + offset, flow.origin, flow.resolution)
        return flow

    def _optimise(self, state: np.ndarray, goal: np.ndarray, mode: str,
                  max_speed: float, use_value: bool = True) -> PlannerCommand:
        flow = self._planning_flow()
        value = (self._value_raster(goal, flow) if (self.config.use_mdp and use_value)
                 else None)
        # Always a raster of the same shape (zero outside surveys): one compiled step.
        information = (self._information if self._information is not None
                       else self.coverage.raster().to(self.device))
        if mode != 'survey':
            information = Raster(torch.zeros_like(information.values), information.origin,
                                 information.resolution)
        scene = Scene(flow=flow, distance=self.workspace.distance,
                      goal=torch.as_tensor(goal, dtype=torch.float32, device=self.device),
                      value=value, information=information,
                      thrust_efficiency=self.health.thrust_efficiency,
                      max_speed=max_speed,
                      clearance=self.vessel.hull_radius)
        result = self.optimiser.optimise(torch.as_tensor(state, dtype=torch.float32),
                                         torch.as_tensor(self._thrust, dtype=torch.float32),
                                         scene)
        command = result.command.detach().cpu().numpy().astype(float)
        command = np.clip(command, -self.vessel.max_thrust_reverse,
                          self.vessel.max_thrust_forward)
        self._thrust = command
        path = result.trajectory[:, :2].detach().cpu().numpy().astype(float)
        # Where the model expects the boat one rollout step from now (for the estimate).
        self._expected = (self._last_stamp, path[0], path[1] if len(path) > 1 else path[0])
        return PlannerCommand(float(command[0]), float(command[1]), path,
                              (float(goal[0]), float(goal[1])), mode, False, result.solve_s)

    # ------------------------------------------------------------------ goals
    def _set_goal(self, goal: np.ndarray) -> None:
        self._goal = goal
        self._holding = False
        self._hurry = 1.0
        self._goal_since = None
        self._hurried_at = -math.inf
        self._pace_track = []
        self.optimiser.reset()

    def _keep_pace(self, xy: np.ndarray, stamp: float, goal: np.ndarray) -> None:
        """Hurry when the pace would miss ``time_budget`` (see `PlannerConfig`)."""
        cfg = self.config
        if cfg.time_budget <= 0.0 or not cfg.use_mdp or self._hurry >= cfg.max_hurry:
            return
        if self._goal_since is None:
            self._goal_since = stamp
        window = cfg.pace_window
        track = self._pace_track
        if not track or stamp - track[-1][0] >= window / 20.0:
            track.append((stamp, xy.copy()))
        while len(track) > 1 and stamp - track[1][0] >= window:
            track.pop(0)
        # A full window, all of it at the present hurry and none of it in the first one
        # (getting under way from rest is no pace), before judging.
        then, then_xy = track[0]
        if (stamp - then < window
                or then < max(self._hurried_at, self._goal_since + window)):
            return
        values = self._value_raster(goal, self._planning_flow())
        if values is None:
            return
        points = torch.as_tensor(np.stack([then_xy, xy]), dtype=values.values.dtype,
                                 device=self.device)
        value_then, value_now = values.sample(points)[:, 0].cpu().tolist()
        made_good = value_then - value_now
        remaining = ((stamp - then) * value_now / made_good if made_good > 0.0
                     else math.inf)
        elapsed = stamp - self._goal_since
        if elapsed + remaining <= 0.9 * cfg.time_budget:
            return
        self._hurry = min(2.0 * self._hurry, cfg.max_hurry)
        self._hurried_at = stamp
        _LOG.info('behind the time budget (%.0f s elapsed, about %.0f s to go, budget %.0f s): '
                  'time weight x%g', elapsed, remaining, cfg.time_budget, self._hurry)

    @property
    def hurry(self) -> float:
        """Factor on the MDP's time weight for the present goal (1: on budget or none)."""
        return self._hurry

    def _current_goal(self, xy: np.ndarray) -> np.ndarray | None:
        if self.mode == 'goto':
            return self._goal
        if self._survey_done:
            return None
        if self._goal is None:
            # The first goal is chosen from where the boat was when it asked (a fixed
            # anchor: a drifting one would ask for a new solve every call).
            if self._first_anchor is None:
                self._first_anchor = xy.copy()
            goal = self._next_sampling_goal(self._first_anchor)
        else:
            distance = float(np.hypot(*(self._goal - xy)))
            if distance < self.config.prefetch_distance:
                self._candidate_costs(self._goal)   # start solving before arrival
            if distance >= self.config.acceptance_radius:
                return self._goal
            goal = self._next_sampling_goal(self._goal)
        if goal is _PENDING:
            return self._goal   # wait at the reached goal for the travel costs
        if goal is None:
            self._survey_done = True
            return None
        self._set_goal(goal)
        return self._goal

    def _next_sampling_goal(self, anchor: np.ndarray):
        """Informative sampling from ``anchor`` (the boat, or the goal it reaches): most
        variance removed per unit of value-to-go; ``_PENDING`` while the costs solve."""
        cfg = self.config
        cost = self._candidate_costs(anchor)
        if cost is _PENDING:
            return _PENDING
        candidates = self._candidates
        information = (self._information if self._information is not None
                       else self.coverage.raster())
        gain = gain_at(information, candidates)
        reach = np.hypot(*(candidates - anchor).T)
        gain = np.where(reach < 2.0 * cfg.acceptance_radius, 0.0, gain)
        budget = (cfg.survey_budget - self._distance_travelled if cfg.survey_budget > 0
                  else math.inf)
        index = choose_goal(candidates, gain, cost, reach, budget, cfg.information_cost_offset)
        return None if index is None else candidates[index].copy()

    def _candidate_costs(self, anchor: np.ndarray):
        """Value-to-go from ``anchor`` to every candidate: the MDP solved towards the anchor
        in the reversed current (reaching p from x in current c takes what reaching x from
        p takes in -c), or straight-line time without the MDP."""
        cfg = self.config
        straight = np.hypot(*(self._candidates - anchor).T) / cfg.weights.nominal_speed
        if not cfg.use_mdp:
            return straight
        key = ('reverse', tuple(np.round(anchor, 3)), self.health.thrust_efficiency)

        def solve_reverse():
            problem = self._problem(anchor, self.flow.negated())
            if problem is None:
                return straight
            values = solve(problem, cfg.mdp_method)
            return values.value(torch.as_tensor(self._candidates, dtype=torch.float32,
                                                device=self.device)).cpu().numpy()

        return self._solves.get(key, solve_reverse)

    def _value_raster(self, goal: np.ndarray, flow: Raster) -> Raster | None:
        """Value-to-go raster for the rollouts' terminal cost (None while it solves in the
        background). The MDP is solved once per goal and thruster health; its value is 0 on
        its whole goal disc, so inside the disc the straight-line distance to the goal
        takes over, priced per metre against the current the rollouts plan with (``flow``:
        the forecast and the online correction, see `homing`). Priced in still water, a
        boat held off the goal by a strong current saw more to lose in energy than to gain
        in progress, and stopped short of it."""
        key = ('value', tuple(np.round(goal, 3)), self.health.thrust_efficiency, self._hurry)

        def solve_value():
            problem = self._problem(goal, self.flow)
            if problem is None:
                return None
            values = solve(problem, self.config.mdp_method)
            return (values.to_raster(self.config.value_resolution),
                    problem.speeds, problem.step_cost / problem.dt, problem.config.goal_radius)

        solved = self._solves.get(key, solve_value)
        if solved is _PENDING or solved is None:
            return None
        # Re-priced when the online correction moves by 5 cm/s (cheap, not every call).
        homing_key = (key, tuple(np.round(self._current_bias / 0.05)))
        if homing_key not in self._homed:
            if len(self._homed) >= 8:
                self._homed.clear()
            values, speeds, cost_rate, radius = solved
            self._homed[homing_key] = homing(values, goal, radius, flow, speeds, cost_rate)
        return self._homed[homing_key]

    def _problem(self, goal: np.ndarray, flow: FlowField) -> MDPProblem | None:
        cfg = self.config
        reachable = max_steady_speed(self.vessel, self.health.thrust_efficiency)
        speeds = tuple(s for s in cfg.mdp.speeds if s <= reachable) or (0.9 * reachable,)
        try:
            return MDPProblem(self._base_workspace, flow, goal, self.vessel,
                              replace(cfg.mdp, speeds=speeds,
                                      time_weight=cfg.mdp.time_weight * self._hurry),
                              thrust_efficiency=self.health.thrust_efficiency)
        except ValueError as error:   # goal on land, no way to steer: plan without the MDP
            _LOG.warning('no MDP for goal %s: %s', tuple(goal), error)
            return None

    # ------------------------------------------------------------------ reactions
    def _estimate_current(self, xy: np.ndarray, stamp: float) -> None:
        """Online current correction: where the boat is against where the rollouts
        expected it, as a velocity, low-pass filtered over ``current_estimation_time``.
        Whatever the model misses (the true current against the expected one, wind,
        fouling) pushes the boat the same way for a while, so the rollouts add it to the
        current they plan with."""
        tau = self.config.current_estimation_time
        if tau <= 0.0 or self._expected is None:
            return
        then, start, one_step = self._expected
        elapsed = stamp - then
        self._expected = None
        if not 0.0 < elapsed <= 3.0 * self.config.mppi.dt:
            return
        predicted = start + (one_step - start) * (elapsed / self.config.mppi.dt)
        error = (xy - predicted) / elapsed
        self._current_bias += (elapsed / (tau + elapsed)) * error
        speed = float(np.hypot(*self._current_bias))
        if speed > MAX_CURRENT_CORRECTION:
            self._current_bias *= MAX_CURRENT_CORRECTION / speed

    @property
    def current_correction(self) -> tuple[float, float]:
        """[m/s] (east, north) the online estimate adds to the expected current."""
        return float(self._current_bias[0]), float(self._current_bias[1])

    def _track(self, xy: np.ndarray, stamp: float) -> None:
        if self._last_xy is not None and self.health.gps_ok:
            self._distance_travelled += float(np.hypot(*(xy - self._last_xy)))
        self._last_xy = xy.copy()
        self._last_stamp = stamp
        if self.mode == 'survey' and self.health.gps_ok:
            self.coverage.observe(xy)

    def _hold(self, state: np.ndarray) -> PlannerCommand:
        """GPS lost: the position estimate drifts, so go slowly and hold where we are."""
        if self._hold_point is None:
            self._hold_point = state[:2].copy()
            self.optimiser.reset()
        return self._optimise(state, self._hold_point, 'hold',
                              max_speed=self.config.gps_lost_speed, use_value=False)

    def _stuck(self, odom: PlanarOdometry) -> bool:
        """Pushing forward hard without moving for ``stuck_time``: weeds or a shoal."""
        pushing = self._thrust.mean() > 0.5 * self.vessel.max_thrust_forward
        if not (pushing and odom.speed < self.config.stuck_speed):
            self._slow_since = None
            return False
        if self._slow_since is None:
            self._slow_since = odom.stamp
        if odom.stamp - self._slow_since >= self.config.stuck_time:
            self._backout_until = odom.stamp + self.config.backout_time
            self._slow_since = None
            self.optimiser.reset()
            return True
        return False

    def _backout(self, state: np.ndarray, stamp: float) -> PlannerCommand:
        """Stuck: reverse straight out the way we came in, then plan again."""
        reverse = -0.8 * self.vessel.max_thrust_reverse
        self._thrust = np.array([reverse, reverse])
        behind = state[:2] - 3.0 * np.array([math.cos(state[2]), math.sin(state[2])])
        path = np.stack([state[:2], behind])
        return PlannerCommand(reverse, reverse, path, tuple(behind), 'backout', False)


_PENDING = object()


class SolveCache:
    """Results of the last few MDP solves by key; with ``background`` the solves run in one
    worker thread and :meth:`get` answers ``_PENDING`` until they are done.

    The worker is a daemon thread: a node shutting down must not wait for a solve.

    Args:
        background: solve in a worker thread (else in the caller's).
        size: number of results kept.
    """

    def __init__(self, background: bool, size: int = 4):
        self._background = background
        self._size = size
        self._results: dict = {}
        self._jobs: dict = {}     # key -> Future
        self._queue: queue.SimpleQueue | None = None

    def get(self, key, solve):
        """The result of ``solve()`` for ``key``, computing it once."""
        if key in self._results:
            return self._results[key]
        if not self._background:
            return self._store(key, solve())
        job = self._jobs.get(key)
        if job is None:
            job = self._jobs[key] = Future()
            self._submit(job, solve)
        if not job.done():
            return _PENDING
        del self._jobs[key]
        return self._store(key, job.result())

    def _submit(self, job: Future, solve) -> None:
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            threading.Thread(target=self._work, name='mdp-solver', daemon=True).start()
        self._queue.put((job, solve))

    def _work(self) -> None:
        while True:
            job, solve = self._queue.get()
            try:
                job.set_result(solve())
            except Exception as error:  # noqa: BLE001 - handed to the caller of get()
                job.set_exception(error)

    def _store(self, key, result):
        self._results[key] = result
        while len(self._results) > self._size:
            self._results.pop(next(iter(self._results)))
        return result


def homing(values: Raster, goal: np.ndarray, radius: float, flow: Raster,
           speeds: torch.Tensor, cost_rate: torch.Tensor) -> Raster:
    """Channel 0 of ``values`` (an MDP value, 0 on its goal disc) with the straight-line
    approach priced inside the disc, continuous at its edge.

    Inside, the value is the distance to the goal times `homing_price` at the point;
    outside, the MDP's value plus the price of crossing the disc along the same ray
    (the price at the disc's edge times ``radius``): approaching from downstream, where
    the last metres are cheap, is worth more than overshooting upstream.

    Args:
        values: value raster (channel 0). goal: [m] (2,). radius: [m] of the goal disc.
        flow: current raster (u, v [m/s], spread). speeds: [m/s] the MDP's speeds through
            the water; cost_rate: [cost/s] holding each of them.
    """
    centres = values.cell_centres()
    goal_t = torch.as_tensor(goal, dtype=centres.dtype, device=centres.device)
    offset = centres - goal_t
    distance = torch.linalg.vector_norm(offset, dim=-1)
    edge = goal_t + offset * (radius / distance.clamp_min(1e-6))[..., None]
    inside = distance <= radius
    price = homing_price(flow, torch.where(inside[..., None], centres, edge), goal_t, speeds,
                         cost_rate)
    value = values.values[0]
    homed = torch.where(inside, distance * price, value + radius * price)
    return Raster(torch.cat([homed[None], values.values[1:]]), values.origin, values.resolution)


#: [m/s] slowest progress over ground that `homing_price` counts as making way.
MIN_PROGRESS = 0.1


def homing_price(flow: Raster, points: torch.Tensor, goal: torch.Tensor,
                 speeds: torch.Tensor, cost_rate: torch.Tensor) -> torch.Tensor:
    """[cost/m] cheapest cost of a metre straight towards ``goal`` from each point in the
    (mean) current there: at speed ``s`` through the water, crabbing to cancel the cross
    current, the boat makes ``c_along + sqrt(s^2 - c_across^2)`` over ground. Where no
    speed makes ``MIN_PROGRESS``, the price of the fastest at that progress.

    Shapes:
        points ``(..., 2)``, goal ``(2,)``, speeds/cost_rate ``(S,)`` -> ``(...)``.
    """
    speeds = speeds.to(points)
    cost_rate = cost_rate.to(points)
    current = flow.sample(points.to(flow.values))[..., :2].to(points)
    toward = goal - points
    toward = toward / torch.linalg.vector_norm(toward, dim=-1, keepdim=True).clamp_min(1e-6)
    along = (current * toward).sum(-1, keepdim=True)
    across2 = ((current * current).sum(-1, keepdim=True) - along * along).clamp_min(0.0)
    spare = speeds * speeds - across2
    progress = along + spare.clamp_min(0.0).sqrt()
    feasible = (spare > 0.0) & (progress >= MIN_PROGRESS)
    price = torch.where(feasible, cost_rate / progress.clamp_min(MIN_PROGRESS),
                        torch.full_like(progress, float('inf'))).amin(-1)
    return price.clamp(max=float(cost_rate.max()) / MIN_PROGRESS)
