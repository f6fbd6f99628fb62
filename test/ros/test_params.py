"""declare_config and run_node with real rclpy nodes (in-process, own context per test)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
import rclpy
from rcl_interfaces.msg import ParameterType
from rclpy.node import Node
from rclpy.parameter import Parameter

from asv_autonomy.ros.params import ConfigError, declare_config, unused_overrides
from asv_autonomy.ros.spin import run_node


@dataclass(frozen=True)
class Hull:
    """Hull of the test boat.

    Args:
        mass: [kg] displacement, including
            the payload.
        thrusters: names of the thrusters.
    """

    mass: float = 30.0
    thrusters: tuple[str, ...] = ('left', 'right')

    def __post_init__(self):
        if not self.mass > 0:
            raise ValueError(f'mass must be > 0 [kg], got {self.mass}')


@dataclass(frozen=True)
class DemoConfig:
    rate_hz: float = field(default=10.0, metadata={'help': 'update rate [Hz]'})
    steps: int = 3
    verbose: bool = False
    frame_id: str = 'map'
    gains: tuple[float, ...] = (1.0, 2.5)
    ids: tuple[int, ...] = (1, 2, 3)
    origin: tuple[float, float] = (0.0, 0.0)
    hull: Hull = Hull(mass=32.0)  # the parent's default, not Hull's own, applies


@contextlib.contextmanager
def ros_node(args=(), overrides=(), name='demo'):
    """A node on its own context, so tests do not share rclpy state."""
    context = rclpy.Context()
    rclpy.init(args=['--ros-args', *args] if args else None, context=context)
    node = None
    try:
        node = Node(name, context=context, parameter_overrides=list(overrides))
        yield node
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)


def params_file(tmp_path, body: str) -> str:
    path = tmp_path / 'params.yaml'
    path.write_text('/**:\n  ros__parameters:\n' + body)
    return str(path)


def test_defaults_are_declared_with_types_and_descriptions(ros_env):
    with ros_node() as node:
        config = declare_config(node, DemoConfig)
        assert config == DemoConfig()
        types = {name: node.describe_parameter(name).type for name in
                 ('rate_hz', 'steps', 'verbose', 'frame_id', 'gains', 'ids', 'hull.mass',
                  'hull.thrusters')}
        assert types == {
            'rate_hz': ParameterType.PARAMETER_DOUBLE, 'steps': ParameterType.PARAMETER_INTEGER,
            'verbose': ParameterType.PARAMETER_BOOL, 'frame_id': ParameterType.PARAMETER_STRING,
            'gains': ParameterType.PARAMETER_DOUBLE_ARRAY,
            'ids': ParameterType.PARAMETER_INTEGER_ARRAY,
            'hull.mass': ParameterType.PARAMETER_DOUBLE,
            'hull.thrusters': ParameterType.PARAMETER_STRING_ARRAY}
        assert node.get_parameter('hull.mass').value == 32.0
        assert node.describe_parameter('rate_hz').description == 'update rate [Hz]'
        assert node.describe_parameter('hull.mass').description == \
            '[kg] displacement, including the payload.'
        # The config is read once: a later change would do nothing, so it is refused.
        result = node.set_parameters([Parameter('steps', value=9)])[0]
        assert not result.successful


def test_parameter_overrides_and_prefix(ros_env):
    overrides = [Parameter('demo.hull.mass', value=45.0), Parameter('demo.steps', value=5),
                 Parameter('demo.gains', value=[0.5])]
    with ros_node(overrides=overrides) as node:
        config = declare_config(node, DemoConfig, prefix='demo')
        assert config == DemoConfig(steps=5, gains=(0.5,), hull=Hull(mass=45.0))
        assert unused_overrides(node) == []


def test_params_file_with_ints_for_doubles(ros_env, tmp_path):
    path = params_file(tmp_path, (
        '    rate_hz: 20\n'          # YAML int for a double: accepted
        '    gains: [1, 2]\n'        # int list for a double list: accepted
        '    ids: [7]\n'
        '    origin: [3, 4]\n'
        '    hull:\n'
        '      mass: 50\n'
        '      thrusters: ["port", "starboard", "bow"]\n'))
    with ros_node(args=['--params-file', path, '-p', 'verbose:=true']) as node:
        config = declare_config(node, DemoConfig)
    assert config == DemoConfig(rate_hz=20.0, verbose=True, gains=(1.0, 2.0), ids=(7,),
                                origin=(3.0, 4.0),
                                hull=Hull(mass=50.0, thrusters=('port', 'starboard', 'bow')))
    assert isinstance(config.rate_hz, float) and isinstance(config.gains[0], float)


@pytest.mark.parametrize('arg, parameter, words', [
    ('steps:=2.5', 'steps', 'expected an integer'),
    ('verbose:=1', 'verbose', 'expected a bool'),
    ('frame_id:=3', 'frame_id', 'expected a string'),
    ('rate_hz:=fast', 'rate_hz', 'expected a double'),
    ('gains:=[a, b]', 'gains', 'expected a list of doubles'),
    ('ids:=5', 'ids', 'expected a list of integers'),
    ('origin:=[1.0]', 'origin', 'expected 2 values'),
    ('hull.mass:=-1.0', 'hull.mass', 'mass must be > 0'),
])
def test_bad_values_raise_config_error_naming_the_parameter(ros_env, arg, parameter, words):
    with ros_node(args=['-p', arg]) as node:
        with pytest.raises(ConfigError) as err:
            declare_config(node, DemoConfig)
    assert err.value.parameter == parameter
    assert words in err.value.reason
    assert str(err.value).startswith(f'bad parameter {parameter}: ')


def test_unused_overrides_are_reported(ros_env):
    with ros_node(args=['-p', 'hul.mass:=3.0', '-p', 'steps:=4']) as node:
        declare_config(node, DemoConfig)
        assert unused_overrides(node) == ['hul.mass']


class DemoNode(Node):
    """Reads DemoConfig, then stops itself once spinning (a stand-in for Ctrl-C)."""

    def __init__(self):
        super().__init__('demo_node')
        self.config = declare_config(self, DemoConfig)
        self.create_timer(0.01, lambda: rclpy.shutdown())


def test_run_node_exit_codes(ros_env, tmp_path, capfd):
    assert run_node(DemoNode, ['demo_node', '--ros-args', '-p', 'typo:=1']) == 0
    assert "parameter 'typo' was given but this node has no such parameter" in \
        capfd.readouterr().err
    assert run_node(DemoNode, ['demo_node', '--ros-args', '-p', 'hull.mass:=-2.0']) == 2
    err = capfd.readouterr().err
    assert 'bad parameter hull.mass: mass must be > 0 [kg], got -2.0' in err
    assert 'Traceback' not in err
    missing = str(tmp_path / 'absent.yaml')
    assert run_node(DemoNode, ['demo_node', '--ros-args', '--params-file', missing]) == 2
    assert not rclpy.ok()  # the default context was shut down each time
