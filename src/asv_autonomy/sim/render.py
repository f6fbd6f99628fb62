"""Simulated camera frames with their ground-truth navigable masks, for training and benchmarks.

`render_dataset(seed, frames, out_dir)` writes ``out_dir/images/<stem>.png`` (RGB frames of
the simulator's forward camera) and ``out_dir/masks/<stem>.png`` (255 where the pixel's ray
meets open water, 0 elsewhere) with the same stem. The world (lake, obstacles) is the
simulator's; ``seed`` selects the scene's look (sun, colours, clouds) and the poses.

Poses are varied on purpose, cycling through three kinds so that every dataset holds all of
them: open water (anywhere on water, any heading), near a shore (shallow water, any
heading: the shoreline fills much of the view) and facing an obstacle (10 .. 80 m from a
buoy or boat, looking at it within a third of the field of view).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .camera import CameraConfig, CameraRenderer
from .world import World, WorldConfig

POSE_KINDS = ('open', 'shore', 'obstacle')


@dataclass(frozen=True)
class RenderConfig:
    """How the poses of a rendered dataset are drawn.

    Args:
        min_depth: [m] a camera pose needs at least this much water under it.
        shore_depth: [m] 'shore' poses are in water shallower than this (near the shore).
        obstacle_clearance: [m] no pose closer than this to an obstacle's edge.
        obstacle_range: [m] (near, far) distance of 'obstacle' poses from the obstacle.
        max_time: [s] frame times are drawn in [0, max_time] (wave and glitter phase).
    """

    min_depth: float = 0.5
    shore_depth: float = 3.0
    obstacle_clearance: float = 3.0
    obstacle_range: tuple[float, float] = (10.0, 80.0)
    max_time: float = 600.0

    def __post_init__(self):
        if not 0.0 < self.min_depth < self.shore_depth:
            raise ValueError(f'need 0 < min_depth < shore_depth [m], got {self.min_depth}, '
                             f'{self.shore_depth}')
        if not self.obstacle_clearance >= 0.0:
            raise ValueError(f'obstacle_clearance must be >= 0 m, got {self.obstacle_clearance}')
        near, far = self.obstacle_range
        if not 0.0 < near < far:
            raise ValueError(f'obstacle_range must be (near, far) with 0 < near < far [m], '
                             f'got {self.obstacle_range}')
        if not self.max_time >= 0.0:
            raise ValueError(f'max_time must be >= 0 s, got {self.max_time}')


class PoseSampler:
    """Camera poses (x [m], y [m], yaw [rad], t [s]) on the water of ``world``.

    Args:
        world: the simulator's world (``depth``, ``extent``, ``obstacles``).
        config: pose rules.
        hfov: [rad] horizontal field of view (aims 'obstacle' poses).
        rng: random generator (the only source of randomness).
    """

    def __init__(self, world: World, config: RenderConfig, hfov: float,
                 rng: np.random.Generator):
        self.world, self.config, self.hfov, self.rng = world, config, hfov, rng

    def _ok(self, x: float, y: float) -> bool:
        if float(self.world.depth(x, y)) < self.config.min_depth:
            return False
        return all(math.hypot(ob.x - x, ob.y - y) - ob.radius >= self.config.obstacle_clearance
                   for ob in self.world.obstacles)

    def _water_point(self, accept: Callable[[float, float], bool]) -> tuple[float, float]:
        xmin, xmax, ymin, ymax = self.world.extent
        for _ in range(10_000):
            x, y = self.rng.uniform(xmin, xmax), self.rng.uniform(ymin, ymax)
            if self._ok(x, y) and accept(x, y):
                return float(x), float(y)
        raise RuntimeError('no water point found that fits the pose rules')

    def sample(self, kind: str) -> tuple[float, float, float, float]:
        """One pose of ``kind`` ('open', 'shore' or 'obstacle')."""
        rng, cfg = self.rng, self.config
        t = float(rng.uniform(0.0, cfg.max_time))
        if kind == 'obstacle' and self.world.obstacles:
            for _ in range(1000):
                ob = self.world.obstacles[rng.integers(len(self.world.obstacles))]
                dist = ob.radius + rng.uniform(*cfg.obstacle_range)
                bearing = rng.uniform(0.0, 2.0 * math.pi)          # obstacle -> camera
                x, y = ob.x + dist * math.cos(bearing), ob.y + dist * math.sin(bearing)
                if self._ok(x, y):
                    yaw = bearing + math.pi + rng.uniform(-self.hfov / 6, self.hfov / 6)
                    return x, y, float(math.remainder(yaw, 2 * math.pi)), t
            kind = 'open'
        if kind == 'shore':
            x, y = self._water_point(lambda x, y: float(self.world.depth(x, y))
                                     < cfg.shore_depth)
        elif kind in ('open', 'obstacle'):
            x, y = self._water_point(lambda x, y: True)
        else:
            raise ValueError(f'unknown pose kind {kind!r}; one of {POSE_KINDS}')
        return x, y, float(rng.uniform(-math.pi, math.pi)), t


def render_frames(seed: int, frames: int, *, camera: CameraConfig = CameraConfig(),
                  world: WorldConfig = WorldConfig(), config: RenderConfig = RenderConfig()):
    """Yield ``frames`` tuples (stem, rgb uint8 (H, W, 3), navigable bool (H, W), pose
    (x, y, yaw, t), kind) of look/pose seed ``seed``; deterministic for a seed."""
    if frames < 0:
        raise ValueError(f'frames must be >= 0, got {frames}')
    world_model = World(world)
    renderer = CameraRenderer(camera, world_model, seed)
    sampler = PoseSampler(world_model, config, math.radians(camera.hfov_deg),
                          np.random.default_rng([int(seed), 0x5E6]))
    for index in range(frames):
        kind = POSE_KINDS[index % len(POSE_KINDS)]
        pose = sampler.sample(kind)
        rgb, navigable = renderer.render(*pose)
        yield f's{seed:04d}_{index:05d}', rgb, navigable, pose, kind


def render_dataset(seed: int, frames: int, out_dir: Path | str, *,
                   camera: CameraConfig = CameraConfig(), world: WorldConfig = WorldConfig(),
                   config: RenderConfig = RenderConfig(),
                   progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Render ``frames`` frames of seed ``seed`` into ``out_dir/images`` and ``out_dir/masks``.

    Args:
        seed: look of the scene and the poses (world seeds 0-99 are held out for
            evaluation; training uses 1000+).
        frames: number of frames.
        out_dir: dataset folder (created; existing files of the same stems are replaced).
        progress: called with (frames done, frames) after each frame.

    Returns:
        The stems written (``s<seed>_<index>``), in order.
    """
    out = Path(out_dir)
    (out / 'images').mkdir(parents=True, exist_ok=True)
    (out / 'masks').mkdir(parents=True, exist_ok=True)
    stems = []
    for stem, rgb, navigable, _pose, _kind in render_frames(seed, frames, camera=camera,
                                                          world=world, config=config):
        for path, array in ((out / 'images' / f'{stem}.png', rgb[:, :, ::-1]),
                            (out / 'masks' / f'{stem}.png',
                             navigable.astype(np.uint8) * 255)):
            if not cv2.imwrite(str(path), np.ascontiguousarray(array)):
                raise OSError(f'cannot write {path}')
        stems.append(stem)
        if progress is not None:
            progress(len(stems), frames)
    return stems
