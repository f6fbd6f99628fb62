"""Model predictive path integral (MPPI) control of the twin-thruster vessel.

One optimisation (Williams et al., "Information theoretic MPC", 2017; nav2 MPPI):

1. sample K thrust sequences around the nominal one (time-correlated Gaussian noise,
   clamped to the thruster limits; sample 0 is the nominal itself) and one current
   disturbance per rollout (the flow's spread),
2. roll all K out for T steps with the shared vessel model, summing the running costs,
   then add the terminal cost (value-to-go, or time to the goal),
3. weight the rollouts by ``softmax(-cost / temperature)`` and set the nominal to the
   weighted mean of the sampled sequences (a convex combination: within the limits),
4. command its first step and shift it one step for the next call (warm start).

Speed: a few rollout steps (dynamics + running cost; ``steps_per_call``) are compiled
together with ``torch.compile`` once per rollout count and device, and called T /
``steps_per_call`` times from a Python loop: each call of a compiled function costs
~0.1 ms of dispatch whatever K is, as much as the arithmetic of one step at K = 1024,
while compiling the whole unrolled horizon would take many minutes. States live
component-major (each of x, y, yaw, ... contiguous over the rollouts), so the compiled
step is vectorised. The scene's tensors are arguments, so new rasters of the same shapes
need no recompilation. Each optimiser compiles its own copy of the step function:
``torch.compile`` keeps compiled variants per code object, at most 8
(``recompile_limit``), so optimisers sharing one would, from the ninth scene shape in a
process on (a benchmark's episodes), silently run eagerly, 3x slower, and keep every dead
optimiser's kernels. Without a working compiler the
optimiser logs a warning and runs eagerly. On CUDA the whole horizon is captured once into
a CUDA graph and replayed (:mod:`.cuda_graph`): one launch instead of T x a few kernels.
"""
from __future__ import annotations

import logging
import math
import time
import types
from dataclasses import dataclass

import torch

from .costs import CostWeights, running_cost, terminal_cost
from .cuda_graph import GraphedRollout
from .rollout import Scene, rollout_step, stable_substeps
from .vessel import VesselParams

__all__ = ['MPPIConfig', 'MPPIResult', 'MPPI', 'Scene']

logger = logging.getLogger(__name__)
DISTURBANCE_PAIRS = ('max', 'mean', 'off')


@dataclass(frozen=True)
class MPPIConfig:
    """Settings of the MPPI optimiser.

    Args:
        rollouts: K, sampled thrust sequences per iteration.
        horizon: T, steps per rollout.
        dt: [s] rollout step (RK4 sub-steps keep it stable for large drag scales).
        temperature: [s] softmin temperature (lambda): smaller trusts the best rollouts more.
        noise_sigma: [N] standard deviation of the thrust noise per thruster.
        noise_smoothing: AR(1) coefficient of the noise along the horizon in [0, 1)
            (0: white noise; larger: smoother sampled sequences, same per-step sigma).
        iterations: sample-and-update rounds per call.
        disturbance_pairs: ``'max'``: K / 2 thrust sequences, each rolled out under a
            sampled current disturbance and its opposite and scored by the worse of the two
            (robust to the current's spread); ``'mean'``: by their mean (unbiased);
            ``'off'``: K sequences, one disturbance each (the softmin then favours lucky
            currents: see ``MPPI._evaluate``).
        warm_start: start the next call from the shifted nominal (else from a hold of the
            current thrust).
        compile: compile the rollout steps with ``torch.compile`` (eager fallback).
        steps_per_call: rollout steps per call of the compiled function: more saves
            dispatch time per optimisation (1024 x 50 on 2 CPU cores: 1 -> 5 halves the
            rollout time) and costs compile time on the first call (~10 s per step,
            cached on disk after). 0: 5, or 1 where a CUDA graph replays the horizon (no
            dispatch to save there).
        cuda_graph: on CUDA, replay the whole horizon from a CUDA graph (falls back to the
            step loop, with a warning, if capturing fails).
        seed: seed of the optimiser's random generator.
    """

    rollouts: int = 1024
    horizon: int = 50
    dt: float = 0.2
    temperature: float = 1.0
    noise_sigma: tuple[float, float] = (15.0, 15.0)
    noise_smoothing: float = 0.5
    iterations: int = 1
    disturbance_pairs: str = 'max'
    warm_start: bool = True
    compile: bool = True
    steps_per_call: int = 0
    cuda_graph: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.disturbance_pairs not in DISTURBANCE_PAIRS:
            raise ValueError(f'MPPIConfig.disturbance_pairs must be one of '
                             f'{DISTURBANCE_PAIRS}, got {self.disturbance_pairs!r}')
        if self.disturbance_pairs != 'off' and self.rollouts % 2:
            raise ValueError(f'MPPIConfig.rollouts must be even with disturbance pairs, got '
                             f'{self.rollouts}')
        if (self.rollouts < 2 or self.horizon < 1 or self.iterations < 1
                or self.steps_per_call < 0):
            raise ValueError(f'MPPIConfig needs rollouts >= 2, horizon >= 1, iterations >= 1, '
                             f'steps_per_call >= 0, got {self.rollouts}, {self.horizon}, '
                             f'{self.iterations}, {self.steps_per_call}')
        if not (math.isfinite(self.dt) and self.dt > 0.0):
            raise ValueError(f'MPPIConfig.dt must be > 0 [s], got {self.dt}')
        if not (math.isfinite(self.temperature) and self.temperature > 0.0):
            raise ValueError(f'MPPIConfig.temperature must be > 0, got {self.temperature}')
        if len(self.noise_sigma) != 2 or not all(math.isfinite(s) and s > 0.0
                                                 for s in self.noise_sigma):
            raise ValueError(f'MPPIConfig.noise_sigma must be two positive thrust deviations '
                             f'[N], got {self.noise_sigma}')
        if not 0.0 <= self.noise_smoothing < 1.0:
            raise ValueError(f'MPPIConfig.noise_smoothing must be in [0, 1), got '
                             f'{self.noise_smoothing}')


@dataclass
class MPPIResult:
    """Outcome of one optimisation.

    Args:
        command: [N] thrust (left, right) to apply now, within the thruster limits.
        controls: [N] optimised thrust sequence (the command is its first row).
        trajectory: expected states (softmin-weighted mean of the sampled rollouts),
            starting at the current state.
        cost: [s] softmin-weighted mean rollout cost.
        solve_s: [s] wall time of the optimisation.

    Shapes:
        command ``(2,)``, controls ``(T, 2)``, trajectory ``(T + 1, 6)``.
    """

    command: torch.Tensor
    controls: torch.Tensor
    trajectory: torch.Tensor
    cost: float
    solve_s: float


def steps_with_cost(state: torch.Tensor, thrust: torch.Tensor, cost: torch.Tensor,
                    commands: torch.Tensor, disturbance: torch.Tensor, scene: Scene,
                    weights: CostWeights, params: VesselParams, dt: float, substeps: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """N rollout steps of every sample, their running costs added to ``cost``.

    Returns:
        (last state, last delivered thrust, cost, the state after each step).

    Shapes:
        state ``(K, 6)``, thrust/disturbance ``(K, 2)``, commands ``(N, K, 2)``,
        cost ``(K,)`` -> (``(K, 6)``, ``(K, 2)``, ``(K,)``, ``(N, K, 6)``).
    """
    states = []
    for command in commands.unbind(0):
        state, thrust = rollout_step(state, thrust, command, disturbance, scene, dt, params,
                                     substeps)
        cost = cost + running_cost(state, thrust, scene, weights, dt, params)
        states.append(state)
    return state, thrust, cost, torch.stack(states)


def component_major(tensor: torch.Tensor) -> torch.Tensor:
    """The same values stored with the last axis outermost (see the module doc).

    Shapes:
        ``(..., n)`` -> ``(..., n)``.
    """
    return tensor.movedim(-1, 0).contiguous().movedim(0, -1)


def start_tensors(state, thrust, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The optimisers' start state and delivered thrust as float32 tensors on ``device``.

    Raises:
        ValueError: wrong shapes, or a non-finite value.

    Shapes:
        state ``(6,)``, thrust ``(2,)``.
    """
    state = torch.as_tensor(state, dtype=torch.float32, device=device)
    thrust = torch.as_tensor(thrust, dtype=torch.float32, device=device)
    if state.shape != (6,) or thrust.shape != (2,):
        raise ValueError(f'optimise needs state (6,) and thrust (2,), got '
                         f'{tuple(state.shape)} and {tuple(thrust.shape)}')
    if not bool(torch.isfinite(state).all() & torch.isfinite(thrust).all()):
        raise ValueError('optimise needs a finite state and thrust')
    return state, thrust


def smoothing_matrix(horizon: int, coefficient: float, device=None,
                     dtype=torch.float32) -> torch.Tensor:
    """Lower-triangular map from white to AR(1) noise with unit stationary variance:
    ``e_0 = w_0``, ``e_t = a e_{t-1} + sqrt(1 - a^2) w_t``.

    Shapes:
        ``(T, T)``.
    """
    t = torch.arange(horizon, device=device, dtype=dtype)
    lag = t[:, None] - t[None, :]
    gain = torch.where(t == 0, 1.0, math.sqrt(1.0 - coefficient ** 2))
    matrix = torch.where(lag >= 0, coefficient ** lag.clamp(min=0), 0.0) * gain[None, :]
    return matrix


def private_copy(function: types.FunctionType) -> types.FunctionType:
    """``function`` with a code object of its own: ``torch.compile`` caches its compiled
    variants, and counts them against ``recompile_limit``, per code object."""
    copy = types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    return copy


class MPPI:
    """MPPI optimiser of thrust sequences; see the module docstring.

    Args:
        config: optimiser settings.
        vessel: vessel model the rollouts use (thrust limits, dynamics, power).
        weights: cost weights.
        device: where rollouts run.
    """

    def __init__(self, config: MPPIConfig, vessel: VesselParams, weights: CostWeights,
                 device: torch.device | str = 'cpu'):
        self.config, self.vessel, self.weights = config, vessel, weights
        self.device = torch.device(device)
        self._generator = torch.Generator(self.device).manual_seed(config.seed)
        self._smoothing = smoothing_matrix(config.horizon, config.noise_smoothing, self.device)
        self._sigma = torch.tensor(config.noise_sigma, device=self.device)
        self._lower = -vessel.max_thrust_reverse
        self._upper = vessel.max_thrust_forward
        self._nominal: torch.Tensor | None = None
        self._step = steps_with_cost
        if config.compile:
            self._step = torch.compile(private_copy(steps_with_cost), dynamic=False,
                                       fullgraph=True)
        self._graphed = (GraphedRollout(self._roll_out)
                         if config.cuda_graph and self.device.type == 'cuda' else None)
        self._steps_per_call = config.steps_per_call or (1 if self._graphed else 5)

    @property
    def nominal(self) -> torch.Tensor | None:
        """[N] (T, 2) thrust sequence the next call starts from (None after reset)."""
        return self._nominal

    def reset(self):
        """Forget the warm start: the next call starts from a hold of the current thrust."""
        self._nominal = None

    @torch.inference_mode()
    def optimise(self, state: torch.Tensor, thrust: torch.Tensor, scene: Scene) -> MPPIResult:
        """Optimise the thrust sequence from ``state`` and return the command to apply.

        Args:
            state: [x, y, yaw, u, v, r] current vessel state (map, body velocities).
            thrust: [N] thrust the thrusters deliver now (before efficiency).
            scene: rasters and tensors the dynamics and costs read (on ``device``).

        Returns:
            the command, optimised controls, expected trajectory and cost.

        Shapes:
            state ``(6,)``, thrust ``(2,)``.
        """
        start = time.perf_counter()
        state, thrust = start_tensors(state, thrust, self.device)
        cfg = self.config
        if self._nominal is None:
            self._nominal = thrust.clamp(self._lower, self._upper).expand(cfg.horizon, 2).clone()
        for _ in range(cfg.iterations):
            controls = self._sample_controls()
            costs, states = self._evaluate(state, thrust, controls, scene)
            softmin = torch.softmax(-(costs - costs.min()) / cfg.temperature, dim=0)
            # (T, 2): sum over K; a convex combination, clamped against float rounding
            self._nominal = (softmin @ controls).clamp(self._lower, self._upper)
        controls = self._nominal
        trajectory = softmin @ states
        if cfg.warm_start:
            self._nominal = torch.cat([controls[1:], controls[-1:]])
        else:
            self._nominal = None
        cost = float(softmin @ costs)
        return MPPIResult(controls[0], controls, trajectory, cost, time.perf_counter() - start)

    def rollout_costs(self, state: torch.Tensor, thrust: torch.Tensor, controls: torch.Tensor,
                      disturbance: torch.Tensor, scene: Scene
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Total cost of each sampled thrust sequence (running + terminal) and its states.

        Args:
            state: start state; thrust: [N] delivered thrust at the start.
            controls: [N] thrust commands per step and rollout.
            disturbance: standard-normal current disturbance per rollout.
            scene: what the dynamics and costs read.

        Returns:
            (cost [s] per rollout, states including the start; NaN costs count as 1e12).

        Shapes:
            state ``(6,)``, thrust ``(2,)``, controls ``(T, K, 2)``, disturbance ``(K, 2)``
            -> (``(K,)``, ``(T + 1, K, 6)``).
        """
        substeps = stable_substeps(self.config.dt, float(scene.drag_scale))
        return self._roll_out(state, thrust, controls, disturbance, scene, substeps)

    def _roll_out(self, state, thrust, controls, disturbance, scene, substeps):
        """:meth:`rollout_costs` without reading tensors back to the host (capturable)."""
        horizon, k = controls.shape[:2]
        x = component_major(state.expand(k, 6))
        f = component_major(thrust.expand(k, 2))
        controls, disturbance = component_major(controls), component_major(disturbance)
        cost = torch.zeros(k, device=self.device)
        states = [x[None]]
        for t in range(0, horizon, self._steps_per_call):
            x, f, cost, stepped = self._call_step(
                x, f, cost, controls[t:t + self._steps_per_call], disturbance, scene,
                substeps)
            states.append(stepped)
        cost = cost + terminal_cost(x, scene, self.weights)
        return torch.nan_to_num(cost, nan=1e12, posinf=1e12), torch.cat(states)

    def _evaluate(self, state, thrust, controls, scene) -> tuple[torch.Tensor, torch.Tensor]:
        """Cost and states of each control sample under its sampled current.

        Unpaired, every rollout has its own disturbance, and the softmin then favours the
        samples that drew a helpful current: the optimiser believes the current weaker than
        the forecast and under-powers against it. Paired, each sample is rolled out under
        +d and -d (K / 2 samples, the same K rollouts) and scored by the pair's mean
        (unbiased) or worse cost (a margin against the current's spread).

        Shapes:
            controls ``(T, S, 2)`` -> (``(S,)``, ``(T + 1, S, 6)``)
        """
        pairing = self.config.disturbance_pairs
        disturbance = self._sample_disturbance(controls.shape[1])
        if pairing == 'off':
            return self._rollout(state, thrust, controls, disturbance, scene)
        costs, states = self._rollout(state, thrust, torch.cat([controls, controls], dim=1),
                                      torch.cat([disturbance, -disturbance]), scene)
        costs = costs.view(2, -1)
        costs = costs.mean(0) if pairing == 'mean' else costs.max(0).values
        half = controls.shape[1]
        return costs, 0.5 * (states[:, :half] + states[:, half:])

    def _rollout(self, state, thrust, controls, disturbance, scene
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._graphed is not None:
            substeps = stable_substeps(self.config.dt, float(scene.drag_scale))
            try:
                return self._graphed(state, thrust, controls, disturbance, scene, substeps)
            except Exception as error:  # noqa: BLE001 - any capture failure: the step loop
                logger.warning('capturing the MPPI rollout in a CUDA graph failed (%s); '
                               'running the step loop', error)
                self._graphed = None
        return self.rollout_costs(state, thrust, controls, disturbance, scene)

    def _call_step(self, *args):
        step_args = (*args[:-1], self.weights, self.vessel, self.config.dt, args[-1])
        try:
            return self._step(*step_args)
        except Exception as error:  # noqa: BLE001 - any compiler failure: run eagerly
            if self._step is steps_with_cost:
                raise
            logger.warning('torch.compile of the MPPI rollout step failed (%s); running '
                           'eagerly', error)
            self._step = steps_with_cost
            return self._step(*step_args)

    def _sample_controls(self) -> torch.Tensor:
        """[N] (T, S, 2) clamped thrust sequences around the nominal; sample 0 = nominal.
        S = K, or K / 2 with disturbance pairs."""
        cfg = self.config
        samples = cfg.rollouts if cfg.disturbance_pairs == 'off' else cfg.rollouts // 2
        white = torch.randn(cfg.horizon, samples, 2, generator=self._generator,
                            device=self.device)
        noise = (self._smoothing @ white.view(cfg.horizon, -1)).view_as(white) * self._sigma
        noise[:, 0] = 0.0
        return (self._nominal[:, None] + noise).clamp(self._lower, self._upper)

    def _sample_disturbance(self, samples: int) -> torch.Tensor:
        """(S, 2) standard-normal current disturbance per sample; sample 0 sees the mean."""
        disturbance = torch.randn(samples, 2, generator=self._generator, device=self.device)
        disturbance[0] = 0.0
        return disturbance
