"""A node's configuration from a ROS 2 parameters file, without ROS.

The headless tools (labelled fault missions, the plume benchmark) run the nodes' logic
in one process and must use the same values the ROS graph would: they read the node's
section of the same YAML file (``/**/<node>`` or ``<node>``, then ``ros__parameters``) and
fill the same config dataclasses that ``ros.params.declare_config`` fills on a node.
Nested dataclass fields come from nested mappings (``vessel: {mass: ...}``) or dotted keys
(``vessel.mass: ...``), lists become tuples; keys that are not fields are ignored, as a node
ignores parameters that another node of the same section declares.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml


class ParamsFileError(ValueError):
    """A parameters file that cannot be read or does not fit a config; names the file."""


def node_parameters(path: Path, node: str) -> dict:
    """The ``ros__parameters`` of ``node`` in the parameters file ``path`` ({} if absent).

    Raises:
        ParamsFileError: unreadable file, invalid YAML, or a section that is not a mapping.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParamsFileError(f'params file {path}: {error}') from None
    if not isinstance(doc, dict):
        raise ParamsFileError(f'params file {path}: not a mapping of node sections')
    section = doc.get(f'/**/{node}', doc.get(node, {})) or {}
    params = section.get('ros__parameters', {}) if isinstance(section, dict) else None
    if not isinstance(params, dict):
        raise ParamsFileError(f'params file {path}: section {node!r} has no '
                              f'ros__parameters mapping')
    return params


def config_from_parameters(cls: type, params: dict, prefix: str = '', source: str = '',
                           defaults: Any = None):
    """An instance of the config dataclass ``cls`` from node parameters.

    Args:
        cls: a (frozen) dataclass; nested dataclass fields are filled recursively.
        params: the node's parameters (``node_parameters``).
        prefix: the config's parameter prefix (e.g. ``'vessel'``), '' for top level.
        source: named in error messages (e.g. the file).
        defaults: an instance whose values are the defaults (a nested config's default in
            its parent, as ``declare_config``); None: the field defaults.

    Raises:
        ParamsFileError: a value the config refuses (its reason and the parameter).
    """
    scope = _scope(params, prefix)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            inner = None if defaults is None else getattr(defaults, f.name)
            if inner is None and f.default is not dataclasses.MISSING:
                inner = f.default
            elif inner is None and f.default_factory is not dataclasses.MISSING:
                inner = f.default_factory()
            kwargs[f.name] = config_from_parameters(hints[f.name], scope, f.name, source,
                                                    inner)
        elif f.name in scope:
            value = scope[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    name = f'{prefix}' if prefix else cls.__name__
    try:
        return dataclasses.replace(defaults, **kwargs) if defaults is not None else cls(**kwargs)
    except (TypeError, ValueError) as error:
        where = f'{source}: ' if source else ''
        raise ParamsFileError(f'{where}{name}: {error}') from None


def _scope(params: dict, prefix: str) -> dict:
    """The parameters under ``prefix``, from a nested mapping and/or dotted keys."""
    if not prefix:
        return params
    nested = params.get(prefix, {})
    scope = dict(nested) if isinstance(nested, dict) else {}
    dotted = f'{prefix}.'
    for key, value in params.items():
        if key.startswith(dotted):
            scope[key[len(dotted):]] = value
    return scope
