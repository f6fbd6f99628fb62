"""Single-beam echosounder over a bathymetry grid, for simulators that have none (Gazebo).

Gazebo has no echosounder sensor, so the Gazebo profile measures depth from the boat's
ground-truth position over the same bathymetry as the built-in simulator
(:class:`asv_autonomy.sim.world.World`: a grid of depths [m, positive down, <= 0 on land]
at cell centres ``origin + cell_size * (column, row)`` in ``map``). The Gazebo world's
``map`` frame is the same local ENU plane (its ``spherical_coordinates`` are the datum), so
a Gazebo pose is a position on that grid.

The noise model and limits are the simulator's :class:`~asv_autonomy.sim.sensors.SonarConfig`
(range = depth below the transducer; std = noise_fraction * range (+) noise_floor; readings
closer than ``min_range`` are -inf and farther than ``max_range`` +inf, REP-117). The beam is
taken as vertical (roll and pitch of a catamaran are a few degrees: < 0.5 % range error).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from asv_autonomy.measurements import InvalidInput, ScalarReading
from asv_autonomy.sim.sensors import SonarConfig
from asv_autonomy.sim.world import World, WorldConfig

INTERPOLATIONS = ('bilinear', 'spline')


@dataclass(frozen=True)
class SonarGridConfig:
    """Args:
        world: the bathymetry (same configuration, hence same lake, as the simulator).
        sonar: rate [Hz], transducer draft [m], noise and range limits [m].
        interpolation: ``'bilinear'`` between cell centres, or ``'spline'`` (the simulator's
            bicubic ``World.depth``: identical truth to the built-in simulator).
        seed: random seed of the noise.
    """

    world: WorldConfig = field(default_factory=WorldConfig)
    sonar: SonarConfig = field(default_factory=SonarConfig)
    interpolation: str = 'bilinear'
    seed: int = 0

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                             f'got {self.interpolation!r}')


class SonarGrid:
    """Water depth and noisy sonar readings at map positions."""

    def __init__(self, config: SonarGridConfig = SonarGridConfig()):
        self.config = config
        self.world = World(config.world)
        self._rng = np.random.default_rng(config.seed)
        rows, cols = self.world.grid.shape
        self._shape = (rows, cols)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """[m] (xmin, xmax, ymin, ymax) of the cell centres: depths exist inside it only."""
        return self.world.extent

    def depth(self, x, y) -> np.ndarray:
        """Water depth [m, positive down; <= 0 on land] at map points (x, y) [m]; NaN outside
        the grid.

        Shapes:
            x, y broadcastable -> their broadcast shape.
        """
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        xmin, xmax, ymin, ymax = self.extent
        inside = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)  # False for NaN
        if self.config.interpolation == 'spline':
            value = self.world.depth(np.where(inside, x, xmin), np.where(inside, y, ymin))
        else:
            value = self._bilinear(np.where(inside, x, xmin), np.where(inside, y, ymin))
        return np.where(inside, value, np.nan)

    def _bilinear(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        rows, cols = self._shape
        x0, y0 = self.config.world.origin
        cell = self.config.world.cell_size
        fx, fy = (x - x0) / cell, (y - y0) / cell
        i = np.clip(np.floor(fx).astype(int), 0, cols - 2)
        j = np.clip(np.floor(fy).astype(int), 0, rows - 2)
        wx, wy = fx - i, fy - j
        g = self.world.grid  # rows = y (south to north), columns = x (west to east)
        return ((g[j, i] * (1 - wx) + g[j, i + 1] * wx) * (1 - wy)
                + (g[j + 1, i] * (1 - wx) + g[j + 1, i + 1] * wx) * wy)

    def measure(self, stamp: float, x: float, y: float) -> ScalarReading:
        """Sonar reading [m below the transducer] at ``stamp`` [s] at map point (x, y) [m].

        Raises:
            InvalidInput: 'nan' for a non-finite position, 'outside_grid' where the grid
                has no depth (the pose is off the modelled lake).
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput('nan', f'position ({x}, {y})')
        water_depth = float(self.depth(x, y))
        if math.isnan(water_depth):
            raise InvalidInput('outside_grid', f'({x:.1f}, {y:.1f}) m is outside the '
                                               f'bathymetry grid {self.extent}')
        c = self.config.sonar
        true_range = water_depth - c.transducer_draft
        variance = (c.noise_fraction * max(true_range, 0.0)) ** 2 + c.noise_floor ** 2
        value = true_range + math.sqrt(variance) * float(self._rng.standard_normal())
        if value < c.min_range:
            value = -math.inf
        elif value > c.max_range:
            value = math.inf
        return ScalarReading(stamp, value, variance)
