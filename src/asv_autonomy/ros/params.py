"""ROS parameters <-> a core's frozen config dataclass.

`declare_config` declares one read-only ROS parameter per dataclass field (nested frozen
dataclasses flatten into dotted names such as ``vessel.mass``), with the dataclass default as
the parameter default, so each default lives once, in the core (DESIGN.md §4 rule 4). Values
from ``--params-file`` / ``-p`` / ``parameter_overrides`` win over the defaults; the result is
the (validated) config instance.

Parameters are read only: the config is frozen and read once at start-up, so a later
``ros2 param set`` would silently do nothing; refusing it says so.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

Type = Parameter.Type

# Field element type -> (scalar ROS type, array ROS type, ROS types accepted as input).
_SCALAR_TYPES = {
    bool: (Type.BOOL, Type.BOOL_ARRAY),
    int: (Type.INTEGER, Type.INTEGER_ARRAY),
    float: (Type.DOUBLE, Type.DOUBLE_ARRAY),
    str: (Type.STRING, Type.STRING_ARRAY),
}
# An integer given where a double is expected (YAML `1` for `1.0`) is accepted.
_ACCEPTED = {
    Type.DOUBLE: (Type.DOUBLE, Type.INTEGER),
    Type.DOUBLE_ARRAY: (Type.DOUBLE_ARRAY, Type.INTEGER_ARRAY),
}
_TYPE_WORDS = {
    Type.BOOL: 'a bool', Type.INTEGER: 'an integer', Type.DOUBLE: 'a double',
    Type.STRING: 'a string', Type.BOOL_ARRAY: 'a list of bools',
    Type.INTEGER_ARRAY: 'a list of integers', Type.DOUBLE_ARRAY: 'a list of doubles',
    Type.STRING_ARRAY: 'a list of strings', Type.BYTE_ARRAY: 'a list of bytes',
    Type.NOT_SET: 'no value',
}


class ConfigError(ValueError):
    """A parameter value that the config refuses.

    Args:
        parameter: full ROS parameter name (``vessel.mass``).
        reason: why it is refused, for a one-line error message.
    """

    def __init__(self, parameter: str, reason: str):
        super().__init__(f'bad parameter {parameter}: {reason}')
        self.parameter = parameter
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class _Leaf:
    """One ROS parameter: the dataclass field it fills and its ROS type."""

    name: str
    ros_type: Parameter.Type
    element: type
    length: int | None  # fixed tuple length (tuple[float, float]); None for scalars/var-length


def declare_config(node: Node, config_cls: type, prefix: str = '') -> Any:
    """Declare ``config_cls``'s fields as parameters of ``node`` and build the config.

    Args:
        node: the node that owns the parameters.
        config_cls: a frozen dataclass whose fields are bool, int, float, str,
            ``tuple[float|int|str|bool, ...]`` or nested frozen dataclasses.
        prefix: parameter name prefix (``'mapper'`` gives ``mapper.field``), '' for none.

    Returns:
        ``config_cls`` instance built from the parameter values.

    Raises:
        ConfigError: a value of the wrong type, or one the config's ``__post_init__`` refuses;
            the message names the parameter.
        TypeError: ``config_cls`` has a field of an unsupported type (a programming error).
    """
    return _build(node, config_cls, prefix, None)


def unused_overrides(node: Node) -> list[str]:
    """Parameter overrides given for ``node`` that match no declared parameter (typos)."""
    # rclpy keeps the overrides (params files, -p, parameter_overrides) only privately.
    overrides = getattr(node, '_parameter_overrides', {})
    return sorted(name for name in overrides if not node.has_parameter(name))


def _build(node: Node, cls: type, prefix: str, defaults: Any) -> Any:
    """``cls`` from parameters under ``prefix``; defaults from the instance ``defaults``
    (a nested config's default in its parent) or, when None, from the field defaults."""
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f'{cls!r} is not a dataclass')
    hints = typing.get_type_hints(cls)
    help_texts = _docstring_args(cls)
    kwargs = {}
    given = set()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name = f'{prefix}.{f.name}' if prefix else f.name
        kind = hints[f.name]
        default = _default(f) if defaults is None else getattr(defaults, f.name)
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = _build(node, kind, name,
                                    None if default is dataclasses.MISSING else default)
            continue
        leaf = _leaf(cls, name, f.name, kind)
        help_text = f.metadata.get('help', help_texts.get(f.name, ''))
        value, was_given = _declare(node, leaf, default, help_text)
        kwargs[f.name] = value
        if was_given:
            given.add(f.name)
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ConfigError(_blame(prefix, cls, str(err), given), str(err)) from None


def _leaf(cls: type, name: str, field_name: str, kind: Any) -> _Leaf:
    if kind in _SCALAR_TYPES:
        return _Leaf(name, _SCALAR_TYPES[kind][0], kind, None)
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALAR_TYPES:
            return _Leaf(name, _SCALAR_TYPES[args[0]][1], args[0], None)
        if len(set(args)) == 1 and args[0] in _SCALAR_TYPES:
            return _Leaf(name, _SCALAR_TYPES[args[0]][1], args[0], len(args))
    raise TypeError(f'{cls.__name__}.{field_name}: type {kind!r} cannot be a ROS parameter '
                    '(use bool, int, float, str, a tuple of one of them, or a dataclass)')


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _declare(node: Node, leaf: _Leaf, default: Any, help_text: str) -> tuple[Any, bool]:
    """Declare one parameter; returns (value for the config, whether an override gave it)."""
    override = getattr(node, '_parameter_overrides', {}).get(leaf.name)
    if override is not None:
        value = _coerce(leaf, override.type_, override.value)
    elif default is dataclasses.MISSING:
        raise ConfigError(leaf.name, 'required (the config has no default); set it')
    elif leaf.ros_type.name.endswith('_ARRAY'):
        value = tuple(leaf.element(v) for v in default)
    else:
        value = leaf.element(default)
    descriptor = ParameterDescriptor(description=help_text, read_only=True)
    if isinstance(value, tuple) and not value:
        # An empty list carries no element type: declare the type, leave the value unset.
        node.declare_parameter(leaf.name, leaf.ros_type, descriptor, ignore_override=True)
    else:
        declared = node.declare_parameter(
            leaf.name, list(value) if isinstance(value, tuple) else value, descriptor,
            ignore_override=True)
        value = _coerce(leaf, declared.type_, declared.value)
    return value, override is not None


def _coerce(leaf: _Leaf, ros_type: Parameter.Type, value: Any) -> Any:
    """Value of ROS type ``ros_type`` as the field's Python type, or ConfigError."""
    is_array = leaf.ros_type.name.endswith('_ARRAY')
    if is_array and ros_type in (Type.NOT_SET, Type.BYTE_ARRAY) and not value:
        value = ()  # YAML `[]` arrives with no type
    elif ros_type not in _ACCEPTED.get(leaf.ros_type, (leaf.ros_type,)):
        raise ConfigError(leaf.name, f'expected {_TYPE_WORDS[leaf.ros_type]}, got '
                                     f'{_TYPE_WORDS.get(ros_type, ros_type.name)} {value!r}')
    if not is_array:
        return leaf.element(value)
    value = tuple(leaf.element(v) for v in value)
    if leaf.length is not None and len(value) != leaf.length:
        raise ConfigError(leaf.name, f'expected {leaf.length} values, got {len(value)}')
    return value


def _blame(prefix: str, cls: type, message: str, given: set[str]) -> str:
    """The parameter a config's ValueError is about: a field named in the message (an
    overridden one first), else the config itself."""
    named = [f.name for f in dataclasses.fields(cls)
             if re.search(rf'\b{re.escape(f.name)}\b', message)]
    named.sort(key=lambda n: n not in given)
    if named:
        return f'{prefix}.{named[0]}' if prefix else named[0]
    return prefix or cls.__name__


def _docstring_args(cls: type) -> dict[str, str]:
    """Field descriptions from the ``Args:`` section of the class docstring.

    Handles ``name: text`` entries, ``a, b: text`` entries and indented continuation lines.
    """
    doc = inspect.getdoc(cls) or ''
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ('Args:', 'Attributes:'))
    except StopIteration:
        return {}
    result: dict[str, str] = {}
    current: list[str] = []
    indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break  # next section (Returns:, Raises: ...)
        match = re.match(r'\s*([\w\s,]+?):\s*(.*)', line) if depth == indent else None
        if match:
            current = [n.strip() for n in match.group(1).split(',')]
            for name in current:
                result[name] = match.group(2).strip()
        else:
            for name in current:
                result[name] = f'{result[name]} {line.strip()}'.strip()
    return result
