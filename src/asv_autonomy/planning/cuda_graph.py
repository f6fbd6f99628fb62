"""The whole MPPI horizon replayed as one CUDA graph.

On a GPU the compiled rollout step is a few small kernels, and T steps from a Python loop
spend most of their time launching them (pytorch-mppi on an H200 is bound by kernel
launches). Captured once into a CUDA graph, the T steps, the running costs and the terminal
cost are one launch. A graph replays fixed addresses, so the inputs are copied into static
buffers before each replay; the scene's tensors too (a few rasters: microseconds), because
the planner builds a new :class:`~.rollout.Scene` every cycle. Python values baked into the
capture (raster origins and resolutions, the RK4 sub-step count that ``drag_scale`` sets,
which optional rasters exist) form the graph's key: a new key re-captures (milliseconds).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import torch

from .raster import Raster
from .rollout import Scene

__all__ = ['GraphedRollout', 'scene_signature']

logger = logging.getLogger(__name__)

RolloutFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def scene_signature(scene: Scene) -> tuple:
    """What a captured rollout depends on besides tensor contents: raster shapes, origins
    and resolutions, tensor shapes and which optional fields are set (the RK4 sub-step
    count that ``drag_scale`` sets is the caller's part of the key)."""
    parts = []
    for item in dataclasses.fields(scene):
        value = getattr(scene, item.name)
        if isinstance(value, Raster):
            parts.append((item.name, tuple(value.values.shape), value.origin, value.resolution))
        elif torch.is_tensor(value):
            parts.append((item.name, tuple(value.shape), value.dtype))
        else:
            parts.append((item.name, value))
    return tuple(parts)


def _clone_scene(scene: Scene) -> Scene:
    def clone(value):
        if isinstance(value, Raster):
            return Raster(value.values.clone(), value.origin, value.resolution)
        return value.clone() if torch.is_tensor(value) else value

    return Scene(**{f.name: clone(getattr(scene, f.name)) for f in dataclasses.fields(scene)})


def _copy_scene(target: Scene, source: Scene):
    for item in dataclasses.fields(source):
        value, static = getattr(source, item.name), getattr(target, item.name)
        if isinstance(value, Raster):
            static.values.copy_(value.values)
        elif torch.is_tensor(value):
            static.copy_(value)


class GraphedRollout:
    """``rollout(state, thrust, controls, disturbance, scene, substeps) -> (costs, states)``
    replayed from a CUDA graph.

    The returned tensors are the graph's static outputs: valid until the next call. The
    captured function must not read tensors back to the host (that ends a capture), hence
    the RK4 sub-step count as an argument.

    Args:
        rollout: the function to capture (``MPPI._roll_out``).

    Shapes:
        state ``(6,)``, thrust ``(2,)``, controls ``(T, K, 2)``, disturbance ``(K, 2)``
        -> (``(K,)``, ``(T + 1, K, 6)``).
    """

    def __init__(self, rollout: RolloutFn):
        self._rollout = rollout
        self._key = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple | None = None
        self._outputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.captures = 0

    def __call__(self, state, thrust, controls, disturbance, scene: Scene, substeps: int):
        key = (scene_signature(scene), tuple(controls.shape), state.device, substeps)
        if key != self._key:
            self._capture(key, state, thrust, controls, disturbance, scene, substeps)
        static_state, static_thrust, static_controls, static_disturbance, static_scene, _ = \
            self._inputs
        static_state.copy_(state)
        static_thrust.copy_(thrust)
        static_controls.copy_(controls)
        static_disturbance.copy_(disturbance)
        _copy_scene(static_scene, scene)
        self._graph.replay()
        return self._outputs

    def _capture(self, key, state, thrust, controls, disturbance, scene, substeps):
        self._graph = self._outputs = self._inputs = None     # free the old graph's pool
        inputs = (state.clone(), thrust.clone(), controls.clone(), disturbance.clone(),
                  _clone_scene(scene), substeps)
        # Warm up on a side stream (compilation, autotuning, allocator) before capturing.
        side = torch.cuda.Stream(device=state.device)
        side.wait_stream(torch.cuda.current_stream(state.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self._rollout(*inputs)
        torch.cuda.current_stream(state.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self._rollout(*inputs)
        self._graph, self._inputs, self._outputs, self._key = graph, inputs, outputs, key
        self.captures += 1
        logger.debug('captured the MPPI rollout in a CUDA graph (%d captures)', self.captures)
