"""Interpreter for the subset of the ROS 2 XML launch format that the project's launch files use.

``ros2 launch`` is not available where ROS 2 comes from PyPI wheels, so ``asv launch`` reads
the same ``launch/*.launch.xml`` files with this module. It follows the semantics of
``launch``/``launch_xml``/``launch_ros`` (Rolling) for:

* tags ``launch``, ``arg`` (``name``, ``default``, ``description``, ``<choice value=.../>``
  children), ``let``, ``include`` (``file`` + ``<arg name value/>`` children), ``group``
  (``scoped``), ``push-ros-namespace`` / ``push_ros_namespace``, ``node`` (``pkg``, ``exec``,
  ``name``, ``namespace``, ``output``, ``respawn``, ``respawn_delay``, ``args``, ``on_exit``;
  ``<param name value/>``, ``<param from/>`` and ``<remap from to/>`` children), ``set_env``;
  ``if`` / ``unless`` on every action;
* substitutions ``$(var NAME)``, ``$(env NAME [DEFAULT])``, ``$(find-pkg-share PKG)``,
  ``$(dirname)``, nested and inside text.

Anything else is refused with a :class:`LaunchError` naming the file and line, so a launch
file never silently means something different here and under ``ros2 launch``.

Semantics worth knowing (all as in ``ros2 launch``): an ``include`` is *not* scoped (its
arguments and ``let`` leak into the including file; wrap it in a ``group`` to scope it); a
``group`` is scoped by default (launch configurations, pushed namespace and ``set_env``);
relative ``include file=`` paths are relative to the working directory, so write
``$(dirname)/other.launch.xml``; parameter values are typed by YAML rules.

Nothing here starts a process: :func:`load_launch` returns a :class:`LaunchPlan`, and
:meth:`NodeProcess.command` gives the command line to run (see ``cli/launch.py``).
"""
from __future__ import annotations

import importlib.metadata
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union
from xml.parsers import expat

import yaml

from asv_autonomy.cli.common import CliError

PACKAGE = 'asv_autonomy'
OUTPUT_MODES = ('screen', 'log', 'both')

ParamValue = Union[bool, int, float, str, tuple]


class LaunchError(CliError):
    """A launch file or launch argument that cannot be interpreted; the message says where."""


@dataclass(frozen=True)
class Param:
    """One ``<param name value/>``: passed as ``-p name:=value``."""

    name: str
    value: ParamValue


@dataclass(frozen=True)
class ParamFile:
    """One ``<param from=.../>``: passed as ``--params-file path``."""

    path: str


@dataclass(frozen=True)
class NodeProcess:
    """One ``<node>`` after substitution: everything needed to start its process.

    ``namespace`` is absolute (pushed namespaces applied) or None when neither the node nor
    an enclosing ``push-ros-namespace`` sets one. ``env`` holds the ``set_env`` variables in
    effect where the node is declared. ``source`` is ``file:line`` of the ``<node>`` tag.
    """

    package: str
    executable: str
    name: str | None = None
    namespace: str | None = None
    output: str = 'log'
    respawn: bool = False
    respawn_delay: float = 0.0
    arguments: tuple[str, ...] = ()
    parameters: tuple[Param | ParamFile, ...] = ()
    remaps: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    on_exit: str | None = None
    source: str = ''

    def ros_arguments(self) -> list[str]:
        """``--ros-args`` and what follows, in the order ``launch_ros`` writes them."""
        args = ['--ros-args']
        if self.name is not None:
            args += ['-r', f'__node:={self.name}']
        if self.namespace is not None:
            args += ['-r', f'__ns:={self.namespace}']
        for param in self.parameters:
            if isinstance(param, ParamFile):
                args += ['--params-file', param.path]
            else:
                args += ['-p', f'{param.name}:={format_parameter_value(param.value)}']
        for source, target in self.remaps:
            args += ['-r', f'{source}:={target}']
        return args

    def command(self) -> list[str]:
        """Full command line; raises LaunchError when the executable cannot be found."""
        try:
            prefix = find_executable(self.package, self.executable)
        except LaunchError as error:
            raise LaunchError(f'{self.source}: <node>: {error}') from None
        return [*prefix, *self.arguments, *self.ros_arguments()]


@dataclass(frozen=True)
class LaunchPlan:
    """What a launch file asks for: its node processes in declaration order.

    ``arguments`` maps each argument declared by the top-level file to its value.
    """

    file: Path
    nodes: tuple[NodeProcess, ...]
    arguments: dict[str, str] = field(default_factory=dict)


# --- command line -----------------------------------------------------------------------

def parse_cli_arguments(items: Sequence[str]) -> dict[str, str]:
    """``['a:=1', 'b:=x']`` -> ``{'a': '1', 'b': 'x'}`` (later repeats win, like ros2 launch)."""
    arguments = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name or name != name.strip():
            raise LaunchError(f"malformed launch argument '{item}': expected NAME:=VALUE")
        arguments[name] = value
    return arguments


def parse_bool(text: str, what: str) -> bool:
    """'true'/'false' (also '1'/'0', any case), as ``launch`` conditions read them."""
    lowered = text.strip().lower()
    if lowered in ('true', '1'):
        return True
    if lowered in ('false', '0'):
        return False
    raise LaunchError(f"{what} must be true or false, got '{text}'")


def resolve_launch_file(spec: str, launch_dir: Path | None = None) -> Path:
    """A path to an existing file, or a profile name: ``sim`` -> ``<share>/launch/sim.launch.xml``.

    A bare file name (``sim.launch.xml``) is also looked up in the launch directory, as
    ``ros2 launch asv_autonomy sim.launch.xml`` would.
    """
    path = Path(spec)
    if path.is_file():
        return path.resolve()
    if launch_dir is None:
        launch_dir = find_package_share(PACKAGE) / 'launch'
    if path.name == spec:
        for candidate in (launch_dir / spec, launch_dir / f'{spec}.launch.xml'):
            if candidate.is_file():
                return candidate.resolve()
    profiles = sorted(p.name[:-len('.launch.xml')] for p in launch_dir.glob('*.launch.xml'))
    raise LaunchError(
        f"no launch file or profile '{spec}'; profiles in {launch_dir}: "
        f"{', '.join(profiles) if profiles else '(none)'}")


# --- packages and executables -------------------------------------------------------------

def _ament_prefix(package: str) -> Path | None:
    """First AMENT_PREFIX_PATH entry whose ament index registers ``package``."""
    for entry in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if entry and (Path(entry) / 'share/ament_index/resource_index/packages' / package).is_file():
            return Path(entry)
    return None


def _source_checkout_root() -> Path | None:
    """The repository root when asv_autonomy runs from a source checkout (editable install)."""
    import asv_autonomy
    for parent in Path(asv_autonomy.__file__).resolve().parents[:3]:
        manifest = parent / 'package.xml'
        if manifest.is_file() and f'<name>{PACKAGE}</name>' in manifest.read_text():
            return parent
    return None


def find_package_share(package: str) -> Path:
    """``$(find-pkg-share package)``.

    asv_autonomy: the source checkout root when running from one, else the installed
    ``<sys.prefix>/share/asv_autonomy``; any package: its share directory in
    AMENT_PREFIX_PATH.
    """
    if package == PACKAGE:
        root = _source_checkout_root()
        if root is not None:
            return root
        installed = Path(sys.prefix) / 'share' / PACKAGE
        if installed.is_dir():
            return installed
    prefix = _ament_prefix(package)
    if prefix is None:
        raise LaunchError(f"package '{package}' not found (not in AMENT_PREFIX_PATH)")
    return prefix / 'share' / package


def find_executable(package: str, executable: str) -> list[str]:
    """Command prefix that runs ``executable`` of ``package``.

    For asv_autonomy the console_scripts entry point of that name, run by this Python so it
    uses the current virtual environment; otherwise ``<prefix>/lib/<package>/<executable>``
    from AMENT_PREFIX_PATH, as ``ros2 run`` finds it.
    """
    if package == PACKAGE:
        for entry in importlib.metadata.entry_points(group='console_scripts', name=executable):
            if entry.dist is not None and entry.dist.name.replace('-', '_') == PACKAGE:
                head = entry.attr.split('.')[0]
                code = f'import sys; from {entry.module} import {head}; sys.exit({entry.attr}())'
                return [sys.executable, '-c', code]
    prefix = _ament_prefix(package)
    if prefix is not None:
        path = prefix / 'lib' / package / executable
        if path.is_file() and os.access(path, os.X_OK):
            return [str(path)]
    hint = ' (a console_scripts entry point in setup.py; reinstall after adding one)' \
        if package == PACKAGE else f' (no lib/{package}/{executable} in AMENT_PREFIX_PATH)'
    raise LaunchError(f"executable '{executable}' of package '{package}' not found{hint}")


# --- parameter values --------------------------------------------------------------------

def parameter_value(text: str) -> ParamValue:
    """Type a parameter value by YAML rules, as launch_ros does.

    ``'true'`` -> True, ``'3'`` -> 3, ``'0.5'`` -> 0.5, ``'[1.0, 2]'`` -> (1.0, 2.0); text
    that YAML does not read as a scalar or a uniform list stays a string.
    """
    if not text:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and kinds <= {bool, int, float, str}:
            return tuple(value)
        if kinds == {int, float}:
            return tuple(float(item) for item in value)
        raise ValueError(f"'{text}' is not a non-empty list of one type (bool, int, float or str)")
    return text


_PLAIN_STRING = re.compile(r'[A-Za-z_/][A-Za-z0-9_./-]*')
# Words rcl's YAML parser would read as something other than a string.
_YAML_WORDS = {'true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', 'nan', 'inf',
               'infinity'}


def format_parameter_value(value: ParamValue) -> str:
    """Render a typed value for ``-p name:=VALUE`` so that rcl reads back the same type."""
    if isinstance(value, tuple):
        return '[' + ', '.join(format_parameter_value(item) for item in value) + ']'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return '.nan'
        if math.isinf(value):
            return '.inf' if value > 0 else '-.inf'
        return repr(value)
    if _PLAIN_STRING.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return "'" + value.replace("'", "''") + "'"


# --- XML with line numbers -----------------------------------------------------------------

@dataclass
class _Element:
    tag: str
    attrib: dict[str, str]
    line: int
    file: Path
    children: list[_Element] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f'{self.file}:{self.line}'


def _read_xml(path: Path) -> _Element:
    parser = expat.ParserCreate()
    stack: list[_Element] = []
    roots: list[_Element] = []

    def start(tag, attrib):
        element = _Element(tag, attrib, parser.CurrentLineNumber, path)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: stack.pop()
    try:
        with open(path, 'rb') as stream:
            parser.ParseFile(stream)
    except OSError as error:
        raise LaunchError(f'cannot read launch file {path}: {error.strerror}') from None
    except expat.ExpatError as error:
        raise LaunchError(f'{path}:{error.lineno}: malformed XML: '
                          f'{expat.ErrorString(error.code)}') from None
    return roots[0]


# --- substitutions -------------------------------------------------------------------------

class _Problem(Exception):
    """An error without a location yet; the interpreter adds the element's file and line."""


@dataclass(frozen=True)
class _Substitution:
    name: str
    args: tuple[tuple, ...]  # each argument is a template: tuple of str | _Substitution


_IDENTIFIER = re.compile(r'[A-Za-z][A-Za-z0-9_-]*')


class _TemplateParser:
    """Recursive descent over the launch_xml substitution grammar (``$(name arg ...)``).

    Outside substitutions quotes are literal and a backslash escapes the next character;
    inside, arguments are separated by spaces and may be quoted with ' or ".
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def parse(self) -> tuple:
        parts = self._fragments(stop='')
        return tuple(parts)

    def _fragments(self, stop: str) -> list:
        """Text and substitutions up to an unescaped character in ``stop`` (not consumed)."""
        parts: list = []
        literal: list[str] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stop:
            char = text[self.pos]
            if char == '\\' and self.pos + 1 < len(text):
                literal.append(text[self.pos + 1])
                self.pos += 2
            elif text.startswith('$(', self.pos):
                if literal:
                    parts.append(''.join(literal))
                    literal = []
                parts.append(self._substitution())
            else:
                literal.append(char)
                self.pos += 1
        if literal:
            parts.append(''.join(literal))
        return parts

    def _substitution(self) -> _Substitution:
        start = self.pos
        self.pos += 2
        match = _IDENTIFIER.match(self.text, self.pos)
        if match is None:
            raise _Problem(f"substitution without a name in '{self.text}'")
        self.pos = match.end()
        args = []
        while self.pos < len(self.text) and self.text[self.pos] == ' ':
            while self.pos < len(self.text) and self.text[self.pos] == ' ':
                self.pos += 1
            if self.pos < len(self.text) and self.text[self.pos] == ')':
                break
            args.append(self._argument())
        if self.pos >= len(self.text) or self.text[self.pos] != ')':
            raise _Problem(f"unterminated substitution '{self.text[start:]}'")
        self.pos += 1
        return _Substitution(match.group(), tuple(args))

    def _argument(self) -> tuple:
        quote = self.text[self.pos]
        if quote in '\'"':
            self.pos += 1
            parts = self._fragments(stop=quote)
            if self.pos >= len(self.text):
                raise _Problem(f"unterminated quote in '{self.text}'")
            self.pos += 1
            return tuple(parts)
        return tuple(self._fragments(stop=' )'))


# --- the interpreter -----------------------------------------------------------------------

@dataclass
class _Scope:
    """What a scoped group saves and restores (launch configurations, namespace, set_env)."""

    configs: dict[str, str]
    namespace: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def copy(self) -> _Scope:
        return _Scope(dict(self.configs), self.namespace, dict(self.env))


def _join_namespace(base: str | None, namespace: str | None) -> str | None:
    """launch_ros ``prefix_namespace`` + ``make_namespace_absolute``."""
    if namespace is None:
        combined = base
    elif not base or namespace.startswith('/'):
        combined = namespace
    else:
        combined = ('' if base == '/' else base) + '/' + namespace
    if combined is None:
        return None
    if combined != '/':
        combined = combined.rstrip('/')
    return combined if combined.startswith('/') else '/' + combined


_NAMESPACE = re.compile(r'/|(/[A-Za-z_][A-Za-z0-9_]*)+')
_NODE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')

_CONDITION_ATTRS = ('if', 'unless')
_MAX_INCLUDE_DEPTH = 32


class _Interpreter:
    """Walks the launch files in order, like the launch service visits actions."""

    def __init__(self, arguments: Mapping[str, str]):
        self.scope = _Scope(dict(arguments))
        self.nodes: list[NodeProcess] = []
        self.declared: set[str] = set()
        self.top_arguments: dict[str, str] = {}
        self.files: list[Path] = []
        self.provided: set[str] = set(arguments)
        self.actions: dict[str, tuple[Callable[[_Element], None], tuple[str, ...]]] = {
            'arg': (self._arg, ('name', 'default', 'description')),
            'let': (self._let, ('name', 'value')),
            'include': (self._include, ('file',)),
            'group': (self._group, ('scoped',)),
            'push-ros-namespace': (self._push_namespace, ('namespace',)),
            'push_ros_namespace': (self._push_namespace, ('namespace',)),
            'node': (self._node, ('pkg', 'exec', 'name', 'namespace', 'output', 'respawn',
                                  'respawn_delay', 'args', 'on_exit')),
            'set_env': (self._set_env, ('name', 'value')),
        }

    # files and elements

    def run_file(self, path: Path, provided: set[str]) -> None:
        if len(self.files) >= _MAX_INCLUDE_DEPTH or path in self.files:
            raise _Problem(f'include cycle: {path} includes itself')
        root = _read_xml(path)
        if root.tag != 'launch':
            raise LaunchError(f'{root.where}: root tag must be <launch>, not <{root.tag}>')
        self._check(root, (), None)
        saved_provided, self.provided = self.provided, provided
        self.files.append(path)
        for child in root.children:
            self.action(child)
        self.files.pop()
        self.provided = saved_provided

    def action(self, element: _Element) -> None:
        if element.tag not in self.actions:
            raise LaunchError(f'{element.where}: unknown tag <{element.tag}> (supported: '
                              f'{", ".join(sorted(self.actions))})')
        handler, attrs = self.actions[element.tag]
        try:
            self._check(element, attrs + _CONDITION_ATTRS, self._children_of(element.tag))
            if self._condition(element):
                handler(element)
        except _Problem as problem:
            raise LaunchError(f'{element.where}: <{element.tag}>: {problem}') from None

    @staticmethod
    def _children_of(tag: str) -> tuple[str, ...] | None:
        """Child tags allowed inside ``tag`` (None: any action, checked when visited)."""
        if tag == 'group':
            return None
        return {'arg': ('choice',), 'include': ('arg',), 'node': ('param', 'remap')}.get(tag, ())

    def _check(self, element: _Element, attrs: Sequence[str],
               children: Sequence[str] | None) -> None:
        """Refuse attributes and child tags this interpreter does not implement."""
        unknown = [name for name in element.attrib if name not in attrs]
        if unknown:
            raise LaunchError(
                f'{element.where}: <{element.tag}>: unknown attribute {unknown[0]!r} '
                f'(supported: {", ".join(attrs) or "none"})')
        if children is not None:
            for child in element.children:
                if child.tag not in children:
                    raise LaunchError(
                        f'{child.where}: unknown tag <{child.tag}> inside <{element.tag}> '
                        f'(supported: {", ".join(children) or "none"})')

    def _condition(self, element: _Element) -> bool:
        if 'if' in element.attrib and 'unless' in element.attrib:
            raise _Problem("'if' and 'unless' are mutually exclusive")
        for attr, wanted in (('if', True), ('unless', False)):
            if attr in element.attrib:
                try:
                    return parse_bool(self.subst(element, attr), f"'{attr}'") == wanted
                except LaunchError as error:
                    raise _Problem(str(error)) from None
        return True

    # substitutions

    def subst(self, element: _Element, attr: str, default: str | None = None) -> str:
        """The attribute's value with substitutions performed (``default`` when absent)."""
        text = element.attrib.get(attr)
        if text is None:
            if default is None:
                raise _Problem(f"missing attribute '{attr}'")
            return default
        try:
            return self._evaluate(_TemplateParser(text).parse())
        except _Problem as problem:
            raise _Problem(f"attribute '{attr}': {problem}") from None

    def _evaluate(self, template: tuple) -> str:
        return ''.join(part if isinstance(part, str) else self._perform(part)
                       for part in template)

    def _perform(self, sub: _Substitution) -> str:
        args = [self._evaluate(arg) for arg in sub.args]
        shown = f"$({' '.join([sub.name, *args])})"
        if sub.name == 'var' and len(args) == 1:
            if args[0] not in self.scope.configs:
                raise _Problem(f"{shown}: launch configuration '{args[0]}' is not defined")
            return self.scope.configs[args[0]]
        if sub.name == 'env' and len(args) in (1, 2):
            value = self.scope.env.get(args[0], os.environ.get(args[0]))
            if value is None:
                if len(args) == 1:
                    raise _Problem(f"{shown}: environment variable '{args[0]}' is not set")
                value = args[1]
            return value
        if sub.name == 'find-pkg-share' and len(args) == 1:
            try:
                return str(find_package_share(args[0]))
            except LaunchError as error:
                raise _Problem(f'{shown}: {error}') from None
        if sub.name == 'dirname' and not args:
            return str(self.files[-1].parent)
        if sub.name in ('var', 'env', 'find-pkg-share', 'dirname'):
            raise _Problem(f'{shown}: wrong number of arguments')
        raise _Problem(f'unsupported substitution {shown} '
                       f'(supported: var, env, find-pkg-share, dirname)')

    def _command_line(self, element: _Element, attr: str) -> tuple[str, ...]:
        """Split like ExecuteProcess: shell-like in literal text, never inside a substitution."""
        args: list[str] = []
        current: list[str] | None = None

        def flush():
            nonlocal current
            if current is not None:
                args.append(''.join(current))
            current = None

        try:
            for part in _TemplateParser(element.attrib[attr]).parse():
                if not isinstance(part, str):
                    current = (current or []) + [self._perform(part)]
                    continue
                tokens = shlex.split(part)
                if part[0].isspace():
                    flush()
                for index, token in enumerate(tokens):
                    if index:
                        flush()
                    current = (current or []) + [token]
                if part[-1].isspace():
                    flush()
        except (_Problem, ValueError) as problem:
            raise _Problem(f"attribute '{attr}': {problem}") from None
        flush()
        return tuple(args)

    # actions

    def _arg(self, element: _Element) -> None:
        name = element.attrib.get('name')
        if not name:
            raise _Problem("missing attribute 'name'")
        choices = []
        for choice in element.children:
            self._check(choice, ('value',), ())
            if 'value' not in choice.attrib:
                raise LaunchError(f"{choice.where}: <choice>: missing attribute 'value'")
            choices.append(choice.attrib['value'])
        self.declared.add(name)
        has_default = 'default' in element.attrib
        if not has_default and (name not in self.provided or name not in self.scope.configs):
            hint = f' (pass {name}:=VALUE)' if len(self.files) == 1 else \
                ' (the <include> must pass it with <arg name=... value=.../>)'
            raise _Problem(f"required argument '{name}' was not provided{hint}")
        if name not in self.scope.configs:
            self.scope.configs[name] = self.subst(element, 'default')
        value = self.scope.configs[name]
        if choices and value not in choices:
            raise _Problem(f"argument '{name}' is '{value}', not one of: {', '.join(choices)}")
        if len(self.files) == 1:
            self.top_arguments[name] = value

    def _let(self, element: _Element) -> None:
        self.scope.configs[self.subst(element, 'name')] = self.subst(element, 'value')

    def _set_env(self, element: _Element) -> None:
        self.scope.env[self.subst(element, 'name')] = self.subst(element, 'value')

    def _push_namespace(self, element: _Element) -> None:
        namespace = _join_namespace(self.scope.namespace, self.subst(element, 'namespace'))
        if not _NAMESPACE.fullmatch(namespace):
            raise _Problem(f"invalid namespace '{namespace}'")
        self.scope.namespace = namespace

    def _group(self, element: _Element) -> None:
        scoped = True
        if 'scoped' in element.attrib:
            try:
                scoped = parse_bool(element.attrib['scoped'], "'scoped'")
            except LaunchError as error:
                raise _Problem(str(error)) from None
        saved = self.scope
        if scoped:
            self.scope = saved.copy()
        for child in element.children:
            self.action(child)
        if scoped:
            self.scope = saved

    def _include(self, element: _Element) -> None:
        path = Path(self.subst(element, 'file'))
        given = []
        for arg in element.children:
            self._check(arg, ('name', 'value'), ())
            try:
                given.append((self.subst(arg, 'name'), self.subst(arg, 'value')))
            except _Problem as problem:
                raise LaunchError(f'{arg.where}: <arg>: {problem}') from None
        if not path.is_file():
            raise _Problem(f'launch file {path} not found')
        if not path.name.endswith('.xml'):
            raise _Problem(f'{path}: only XML launch files can be included')
        for name, value in given:
            self.scope.configs[name] = value
        self.run_file(path.resolve(), {name for name, _ in given})

    def _node(self, element: _Element) -> None:
        attrib = element.attrib
        name = self.subst(element, 'name') if 'name' in attrib else None
        if name is not None and not _NODE_NAME.fullmatch(name):
            raise _Problem(f"invalid node name '{name}'")
        own_namespace = self.subst(element, 'namespace') if 'namespace' in attrib else None
        namespace = _join_namespace(self.scope.namespace, own_namespace)
        if namespace is not None and not _NAMESPACE.fullmatch(namespace):
            raise _Problem(f"invalid namespace '{namespace}'")
        output = self.subst(element, 'output', 'log')
        if output not in OUTPUT_MODES:
            raise _Problem(f"output must be one of {', '.join(OUTPUT_MODES)}, got '{output}'")
        try:
            respawn = parse_bool(self.subst(element, 'respawn', 'false'), "'respawn'")
        except LaunchError as error:
            raise _Problem(str(error)) from None
        try:
            respawn_delay = float(attrib.get('respawn_delay', '0'))
        except ValueError:
            respawn_delay = -1.0
        if not respawn_delay >= 0.0:
            raise _Problem(f"respawn_delay must be a number >= 0, got '{attrib['respawn_delay']}'")
        on_exit = attrib.get('on_exit')
        if on_exit not in (None, 'shutdown'):
            raise _Problem(f"on_exit supports only 'shutdown', got '{on_exit}'")
        parameters: list[Param | ParamFile] = []
        remaps: list[tuple[str, str]] = []
        for child in element.children:
            try:
                if child.tag == 'param':
                    parameters.append(self._param(child))
                else:
                    self._check(child, ('from', 'to'), ())
                    remaps.append((self.subst(child, 'from'), self.subst(child, 'to')))
            except _Problem as problem:
                raise LaunchError(f'{child.where}: <{child.tag}>: {problem}') from None
        self.nodes.append(NodeProcess(
            package=self.subst(element, 'pkg'), executable=self.subst(element, 'exec'),
            name=name, namespace=namespace, output=output, respawn=respawn,
            respawn_delay=respawn_delay,
            arguments=self._command_line(element, 'args') if 'args' in attrib else (),
            parameters=tuple(parameters), remaps=tuple(remaps),
            env=tuple(self.scope.env.items()), on_exit=on_exit, source=element.where))

    def _param(self, element: _Element) -> Param | ParamFile:
        self._check(element, ('name', 'value', 'from'), ())
        if 'from' in element.attrib:
            if set(element.attrib) != {'from'}:
                raise _Problem("'from' cannot be combined with 'name' or 'value'")
            path = Path(self.subst(element, 'from'))
            if not path.is_file():
                raise _Problem(f'parameter file {path} not found')
            return ParamFile(str(path.resolve()))
        name = self.subst(element, 'name')
        if not name:
            raise _Problem('empty parameter name')
        try:
            return Param(name, parameter_value(self.subst(element, 'value')))
        except ValueError as error:
            raise _Problem(f"parameter '{name}': {error}") from None


def load_launch(path: Path | str, arguments: Mapping[str, str] | None = None) -> LaunchPlan:
    """Interpret a launch file with ``name:=value`` arguments into a :class:`LaunchPlan`.

    Raises LaunchError (with file and line) for anything outside the supported subset, a
    required argument without a value, or an argument the launch files do not declare.
    """
    path = Path(path).resolve()
    arguments = dict(arguments or {})
    interpreter = _Interpreter(arguments)
    interpreter.run_file(path, set(arguments))
    undeclared = sorted(set(arguments) - interpreter.declared)
    if undeclared:
        raise LaunchError(
            f"{path}: argument '{undeclared[0]}' is not declared by the launch file "
            f"(declared: {', '.join(sorted(interpreter.declared)) or 'none'})")
    return LaunchPlan(path, tuple(interpreter.nodes), interpreter.top_arguments)
