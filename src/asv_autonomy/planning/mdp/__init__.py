"""Navigation MDP under uncertain currents, solved by policy iteration with a kernel
(mesh-free) or finite-element (mesh-based) value function, or by value iteration on a fine
grid (reference).

    problem = MDPProblem(workspace, flow, goal, vessel, MDPConfig())
    values = solve(problem, method='kernel')   # or 'fem', 'grid'
    values.value(xy), values.policy(xy), values.to_raster(10.0)
"""
from __future__ import annotations

from asv_autonomy.planning.mdp.fem import FEMConfig, solve_fem
from asv_autonomy.planning.mdp.grid import GridConfig, solve_grid
from asv_autonomy.planning.mdp.kernel import KernelConfig, solve_kernel
from asv_autonomy.planning.mdp.problem import (MDPConfig, MDPProblem, ValueFunction,
                                               calm_water_price, max_steady_speed,
                                               steady_thrust)

METHODS = {'kernel': (solve_kernel, KernelConfig), 'fem': (solve_fem, FEMConfig),
           'grid': (solve_grid, GridConfig)}


def solve(problem: MDPProblem, method: str = 'kernel', config=None) -> ValueFunction:
    """Solve ``problem`` with ``method`` (``'kernel'``, ``'fem'`` or ``'grid'``) and its
    config (``KernelConfig``, ``FEMConfig``, ``GridConfig``; None: defaults)."""
    if method not in METHODS:
        raise ValueError(f'unknown MDP method {method!r}, expected one of {sorted(METHODS)}')
    solver, config_type = METHODS[method]
    config = config_type() if config is None else config
    if not isinstance(config, config_type):
        raise ValueError(f'method {method!r} needs a {config_type.__name__}, got '
                         f'{type(config).__name__}')
    return solver(problem, config)


__all__ = ['FEMConfig', 'GridConfig', 'KernelConfig', 'MDPConfig', 'MDPProblem',
           'ValueFunction', 'calm_water_price', 'max_steady_speed', 'solve', 'steady_thrust']
