"""The ``pytorch-mppi`` package (pip ``pytorch-mppi``) as a peer of :class:`~.mppi.MPPI`.

It runs the SAME rollout dynamics (:func:`~.rollout.rollout_step`) and cost terms
(:func:`~.costs.running_cost`, :func:`~.costs.terminal_cost`) through
``pytorch_mppi.MPPI`` and exposes the same ``optimise(state, thrust, scene)``, so the
planner and the benchmarks can swap it in (``optimizer='pytorch-mppi'``).

pytorch-mppi's state is one vector per rollout, so the peer's state is augmented:
``[x, y, yaw, u, v, r, thrust_left, thrust_right, disturbance_east, disturbance_north]``
(the thruster lag and the rollout's current disturbance travel with it). Differences
that belong to the package: white (not time-correlated) noise, one iteration per call,
its own control-cost term ``lambda * U^T Sigma^-1 noise``, the global torch random
generator, and the shifted sequence is filled with zero thrust.
"""
from __future__ import annotations

import time

import torch

from .costs import CostWeights, running_cost, terminal_cost
from .mppi import MPPI, MPPIConfig, MPPIResult, start_tensors
from .rollout import Scene, rollout_step, stable_substeps
from .vessel import VesselParams

AUGMENTED_STATE = 10


class PytorchMPPI:
    """``pytorch_mppi.MPPI`` on the shared vessel model and costs.

    Args:
        config: rollouts, horizon, dt, temperature (its ``lambda_``), noise_sigma, seed
            (of the disturbance) and compile (``pytorch_mppi.MPPI.compile``) are used;
            noise_smoothing, iterations and warm_start are not (see the module doc).
        vessel: vessel model; weights: cost weights; device: where rollouts run.
    """

    def __init__(self, config: MPPIConfig, vessel: VesselParams, weights: CostWeights,
                 device: torch.device | str = 'cpu'):
        from pytorch_mppi import MPPI as PackageMPPI  # optional dependency of the planner

        self.config, self.vessel, self.weights = config, vessel, weights
        self.device = torch.device(device)
        self._generator = torch.Generator(self.device).manual_seed(config.seed)
        self._scene: Scene | None = None
        self._substeps = 1
        sigma = torch.tensor(config.noise_sigma, device=self.device)
        self._mppi = PackageMPPI(
            self._dynamics, self._running_cost, AUGMENTED_STATE,
            noise_sigma=torch.diag(sigma.square()), num_samples=config.rollouts,
            horizon=config.horizon, device=self.device,
            terminal_state_cost=self._terminal_cost, lambda_=config.temperature,
            u_min=torch.full((2,), -vessel.max_thrust_reverse, device=self.device),
            u_max=torch.full((2,), vessel.max_thrust_forward, device=self.device),
            U_init=torch.zeros(config.horizon, 2, device=self.device))
        if config.compile:
            self._mppi.compile(dynamic=False)

    def reset(self):
        """Forget the warm start (pytorch-mppi re-samples its nominal sequence)."""
        self._mppi.reset()

    @torch.inference_mode()
    def optimise(self, state: torch.Tensor, thrust: torch.Tensor, scene: Scene) -> MPPIResult:
        """Same contract as :meth:`asv_autonomy.planning.mppi.MPPI.optimise`.

        Shapes:
            state ``(6,)``, thrust ``(2,)``.
        """
        start = time.perf_counter()
        state, thrust = start_tensors(state, thrust, self.device)
        k = self.config.rollouts
        self._scene = scene
        self._substeps = stable_substeps(self.config.dt, float(scene.drag_scale))
        disturbance = torch.randn(k, 2, generator=self._generator, device=self.device)
        augmented = torch.cat([state, thrust]).expand(k, 8)
        command = self._mppi.command(torch.cat([augmented, disturbance], dim=1))
        omega = self._mppi.omega
        states = self._mppi.states[0, :, :, :6]                       # (K, T, 6)
        trajectory = torch.cat([state[None], torch.einsum('k,ktc->tc', omega, states)])
        cost = float(omega @ self._mppi.cost_total)
        return MPPIResult(command, self._mppi.U.clone(), trajectory, cost,
                          time.perf_counter() - start)

    def _dynamics(self, augmented: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
        state, thrust = rollout_step(augmented[:, :6], augmented[:, 6:8], command,
                                     augmented[:, 8:], self._scene, self.config.dt,
                                     self.vessel, self._substeps)
        return torch.cat([state, thrust, augmented[:, 8:]], dim=1)

    def _running_cost(self, augmented: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
        cost = running_cost(augmented[:, :6], augmented[:, 6:8], self._scene, self.weights,
                            self.config.dt, self.vessel)
        return torch.nan_to_num(cost, nan=1e12, posinf=1e12)

    def _terminal_cost(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        cost = terminal_cost(states[0, :, -1, :6], self._scene, self.weights)
        return torch.nan_to_num(cost, nan=1e12, posinf=1e12)


OPTIMISERS = {'asv': 'the compiled MPPI of planning/mppi.py',
              'pytorch-mppi': 'pytorch_mppi.MPPI on the same dynamics and costs'}


def make_optimiser(name: str, config: MPPIConfig, vessel: VesselParams, weights: CostWeights,
                   device: torch.device | str = 'cpu'):
    """The optimiser called ``name`` (a key of :data:`OPTIMISERS`); both expose
    ``optimise(state, thrust, scene) -> MPPIResult`` and ``reset()``."""
    if name == 'asv':
        return MPPI(config, vessel, weights, device)
    if name == 'pytorch-mppi':
        return PytorchMPPI(config, vessel, weights, device)
    raise ValueError(f'unknown optimiser {name!r}; choose one of {sorted(OPTIMISERS)}')
