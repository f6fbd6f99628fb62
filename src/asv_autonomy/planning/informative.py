"""Informative sampling: where to sample next, trading the map's uncertainty against the
cost of getting there within a mission budget.

Greedy "information per unit cost" goal selection (the usual budgeted informative path
planning heuristic, e.g. Hollinger & Sukhatme 2014; Popovic et al. 2020): each candidate's
gain is the map variance it would remove (the variance around it), its cost is the boat's
value-to-go from where it is now to the candidate (an MDP in the reversed current when
the planner has one, distance / speed otherwise). Candidates beyond the remaining budget
are never chosen.

When no map has arrived yet the planner keeps its own coverage estimate: a prior variance
of one everywhere, removed along its own track by a Gaussian sensor footprint.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .raster import Raster


def candidate_points(polygon: np.ndarray, spacing: float, inset: float) -> np.ndarray:
    """[m] (N, 2) points of a regular grid of ``spacing`` inside a convex polygon shrunk
    by ``inset``.

    Args:
        polygon: (V, 2) [m] convex polygon vertices (either orientation).
        spacing: [m] grid spacing. inset: [m] margin from the edges.
    """
    edges = np.roll(polygon, -1, axis=0) - polygon
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.hypot(normals[:, 0], normals[:, 1])[:, None]
    centroid = polygon.mean(axis=0)
    normals *= np.sign(((polygon - centroid) * normals).sum(axis=1))[:, None]   # outward
    limit = (normals * polygon).sum(axis=1) - inset
    (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
    xs = np.arange(x0 + inset, x1 - inset + 1e-9, spacing)
    ys = np.arange(y0 + inset, y1 - inset + 1e-9, spacing)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid[(grid @ normals.T <= limit + 1e-9).all(axis=1)]


class CoverageModel:
    """The planner's own estimate of the remaining map variance over the survey area.

    A prior variance of 1 per cell; a track point removes variance with a Gaussian
    footprint of ``footprint`` [m] (a crude stand-in for the GP posterior, used until the
    mapping node's uncertainty arrives). Points closer than one cell to the last one that
    counted are ignored: like repeated readings at one place for a GP, they add nothing,
    and the model must not depend on how often it is called.

    Args:
        extent: [m] (x_min, x_max, y_min, y_max) covered.
        resolution: [m] cell size.
        footprint: [m] 1-sigma radius of the variance a sample removes.
    """

    def __init__(self, extent: tuple[float, float, float, float], resolution: float,
                 footprint: float):
        x_min, x_max, y_min, y_max = extent
        nx = max(2, int(math.ceil((x_max - x_min) / resolution)) + 1)
        ny = max(2, int(math.ceil((y_max - y_min) / resolution)) + 1)
        self.origin = (x_min, y_min)
        self.resolution = resolution
        self.footprint = footprint
        self.variance = np.ones((ny, nx))
        ys, xs = np.mgrid[0:ny, 0:nx]
        self._xs = x_min + xs * resolution
        self._ys = y_min + ys * resolution
        self._last: np.ndarray | None = None

    def observe(self, xy: np.ndarray) -> None:
        """Remove the variance a sample at each of the (N, 2) [m] points takes away."""
        for point in np.asarray(xy, float).reshape(-1, 2):
            if self._last is not None and np.hypot(*(point - self._last)) < self.resolution:
                continue
            self._last = point
            x, y = point
            d2 = (self._xs - x) ** 2 + (self._ys - y) ** 2
            self.variance *= 1.0 - np.exp(-0.5 * d2 / self.footprint ** 2)

    def raster(self) -> Raster:
        """Standard deviation as a one-channel Raster."""
        return Raster(np.sqrt(self.variance), self.origin, self.resolution)


def choose_goal(candidates: np.ndarray, gain: np.ndarray, cost: np.ndarray,
                reach: np.ndarray, budget: float, cost_offset: float) -> int | None:
    """Index of the candidate with the most gain per unit cost that fits the budget.

    Args:
        candidates: (N, 2) [m] candidate sampling goals (only used for the shape check).
        gain: (N,) information each would bring (map variance around it).
        cost: (N,) value-to-go from the boat to each (>= 0, inf = unreachable).
        reach: (N,) [m] travel distance to each, compared with ``budget``.
        budget: [m] distance the mission may still travel.
        cost_offset: added to every cost so that adjacent candidates (cost ~ 0) do not win
            by a tiny denominator alone.

    Returns:
        The chosen index, or None when no candidate with positive gain fits the budget.
    """
    if not (len(candidates) == len(gain) == len(cost) == len(reach)):
        raise ValueError('candidates, gain, cost and reach must have the same length')
    feasible = np.isfinite(cost) & (reach <= budget) & (gain > 1e-6)
    if not feasible.any():
        return None
    score = np.where(feasible, gain / (np.maximum(cost, 0.0) + cost_offset), -np.inf)
    return int(np.argmax(score))


def gain_at(information: Raster, points: np.ndarray) -> np.ndarray:
    """(N,) variance (std^2) of the information raster at (N, 2) [m] points."""
    xy = torch.as_tensor(points, dtype=information.values.dtype,
                         device=information.values.device)
    std = information.sample(xy)[..., 0]
    return (std * std).cpu().numpy().astype(float)
