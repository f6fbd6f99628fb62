"""launch_xml: the ROS 2 XML launch subset behind `asv launch` (no ROS needed)."""
import os
import shutil
import sys
from pathlib import Path

import pytest

from asv_autonomy.cli.launch_xml import (
    LaunchError, NodeProcess, Param, ParamFile, find_executable, find_package_share,
    format_parameter_value, load_launch, parameter_value, parse_cli_arguments,
    resolve_launch_file)

DATA = Path(__file__).parent / 'data'
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix(tmp_path, monkeypatch) -> Path:
    """An ament prefix with package `fakepkg` (config files, executable `fake_node`)."""
    root = tmp_path / 'prefix'
    (root / 'share/ament_index/resource_index/packages').mkdir(parents=True)
    (root / 'share/ament_index/resource_index/packages/fakepkg').touch()
    (root / 'share/fakepkg/config').mkdir(parents=True)
    for mode in ('sim', 'real'):
        (root / f'share/fakepkg/config/{mode}.yaml').write_text('/**:\n  ros__parameters: {}\n')
    (root / 'lib/fakepkg').mkdir(parents=True)
    executable = root / 'lib/fakepkg/fake_node'
    shutil.copy(DATA / 'fake_node.py', executable)
    executable.chmod(0o755)
    monkeypatch.setenv('AMENT_PREFIX_PATH', f'{tmp_path / "empty"}{os.pathsep}{root}')
    monkeypatch.delenv('FAKE_HOME', raising=False)
    return root


def write(tmp_path: Path, text: str, name: str = 'case.launch.xml') -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def by_name(plan) -> dict[str, NodeProcess]:
    return {node.name: node for node in plan.nodes}


# --- the full fixture ----------------------------------------------------------------------

def test_full_fixture_with_defaults(prefix):
    plan = load_launch(DATA / 'full.launch.xml')
    nodes = by_name(plan)
    assert list(nodes) == ['talker', 'inner_changed', 'in_group', 'after']
    assert plan.arguments == {'namespace': '', 'use_sim_time': 'false', 'mode': 'sim'}

    talker = nodes['talker']
    assert (talker.package, talker.executable) == ('fakepkg', 'fake_node')
    assert talker.namespace == '/'  # an empty pushed namespace is the root
    assert talker.output == 'screen' and not talker.respawn and talker.on_exit is None
    assert talker.arguments == ('--flag', 'two words', 'asimb')
    assert talker.parameters == (
        ParamFile(str(prefix / 'share/fakepkg/config/sim.yaml')),
        Param('use_sim_time', False), Param('rate', 10), Param('gain', 0.5),
        Param('frame_id', 'base_link'), Param('weights', (1.0, 2.0)),
        Param('home', '/no where'))
    assert talker.remaps == (('chatter', 'talk'),)
    assert talker.env == (('FAKE_ENV', 'top-sim'),)
    assert talker.source == f'{DATA / "full.launch.xml"}:12'

    # Inside the group: pushed namespace, scoped let and set_env, include with an argument.
    inner = nodes['inner_changed']
    assert inner.namespace == '/sensors' and inner.output == 'log'
    assert inner.env == (('FAKE_ENV', 'top-sim'), ('FAKE_SCOPED', 'inside'))
    in_group = nodes['in_group']
    assert in_group.namespace == '/sensors/cam'
    assert in_group.respawn and in_group.respawn_delay == 0.5

    # After the group its let, namespace and set_env are gone; absolute namespaces stay.
    after = nodes['after']
    assert after.namespace == '/abs' and after.on_exit == 'shutdown' and after.output == 'both'
    assert after.parameters == (Param('mode', 'sim'),)
    assert after.env == (('FAKE_ENV', 'top-sim'),)


def test_full_fixture_with_arguments(prefix, monkeypatch):
    monkeypatch.setenv('FAKE_HOME', '/home/boat')
    plan = load_launch(DATA / 'full.launch.xml',
                       {'namespace': 'asv1', 'mode': 'real', 'use_sim_time': 'true'})
    nodes = by_name(plan)
    assert list(nodes) == ['talker', 'inner_changed', 'in_group', 'after', 'sim_time_only']
    assert plan.arguments == {'namespace': 'asv1', 'use_sim_time': 'true', 'mode': 'real'}
    talker = nodes['talker']
    assert talker.namespace == '/asv1'
    assert talker.parameters[0] == ParamFile(str(prefix / 'share/fakepkg/config/real.yaml'))
    assert Param('use_sim_time', True) in talker.parameters
    assert Param('home', '/home/boat') in talker.parameters
    assert nodes['inner_changed'].namespace == '/asv1/sensors'
    assert nodes['in_group'].namespace == '/asv1/sensors/cam'
    assert nodes['after'].namespace == '/abs'
    assert nodes['sim_time_only'].namespace == '/asv1'


def test_ros_arguments_follow_launch_ros_order(prefix):
    talker = by_name(load_launch(DATA / 'full.launch.xml', {'namespace': 'asv1'}))['talker']
    assert talker.command() == [
        str(prefix / 'lib/fakepkg/fake_node'), '--flag', 'two words', 'asimb',
        '--ros-args', '-r', '__node:=talker', '-r', '__ns:=/asv1',
        '--params-file', str(prefix / 'share/fakepkg/config/sim.yaml'),
        '-p', 'use_sim_time:=false', '-p', 'rate:=10', '-p', 'gain:=0.5',
        '-p', 'frame_id:=base_link', '-p', 'weights:=[1.0, 2.0]', '-p', "home:='/no where'",
        '-r', 'chatter:=talk']


def test_node_without_name_or_namespace_gets_no_remaps():
    node = NodeProcess('fakepkg', 'fake_node')
    assert node.ros_arguments() == ['--ros-args']


# --- scoping and semantics --------------------------------------------------------------

def test_group_scoping_and_unscoped_group(prefix, tmp_path):
    path = write(tmp_path, '''<launch>
  <let name="x" value="outer"/>
  <group>
    <let name="x" value="in"/>
    <push-ros-namespace namespace="a"/>
  </group>
  <node pkg="fakepkg" exec="fake_node" name="n1" args="$(var x)"/>
  <group scoped="false">
    <let name="x" value="leaked"/>
    <push-ros-namespace namespace="b"/>
    <set_env name="FAKE_SCOPED" value="leaked"/>
  </group>
  <node pkg="fakepkg" exec="fake_node" name="n2" args="$(var x)"/>
</launch>''')
    nodes = by_name(load_launch(path))
    assert nodes['n1'].namespace is None and nodes['n1'].arguments == ('outer',)
    assert nodes['n1'].env == ()
    assert nodes['n2'].namespace == '/b' and nodes['n2'].arguments == ('leaked',)
    assert nodes['n2'].env == (('FAKE_SCOPED', 'leaked'),)


def test_include_is_not_scoped_and_sees_parent_configuration(prefix, tmp_path):
    write(tmp_path, '''<launch>
  <arg name="label"/>
  <let name="from_inner" value="$(var label)-$(var parent_only)"/>
  <push-ros-namespace namespace="inner_ns"/>
</launch>''', 'inner.launch.xml')
    path = write(tmp_path, '''<launch>
  <let name="parent_only" value="p"/>
  <include file="$(dirname)/inner.launch.xml"><arg name="label" value="L"/></include>
  <node pkg="fakepkg" exec="fake_node" name="n" args="$(var from_inner) $(var label)"/>
</launch>''')
    node = load_launch(path).nodes[0]
    assert node.arguments == ('L-p', 'L')  # as with ros2 launch: includes leak
    assert node.namespace == '/inner_ns'


def test_if_and_unless(prefix, tmp_path):
    path = write(tmp_path, '''<launch>
  <arg name="on" default="true"/>
  <node pkg="fakepkg" exec="fake_node" name="a" if="$(var on)"/>
  <node pkg="fakepkg" exec="fake_node" name="b" unless="$(var on)"/>
  <group if="False"><node pkg="fakepkg" exec="fake_node" name="c"/></group>
</launch>''')
    assert [n.name for n in load_launch(path).nodes] == ['a']
    assert [n.name for n in load_launch(path, {'on': '0'}).nodes] == ['b']


def test_substitution_syntax(prefix, tmp_path, monkeypatch):
    monkeypatch.setenv('FAKE_PKG_NAME', 'fakepkg')
    path = write(tmp_path, r'''<launch>
  <let name="pkg" value="fake$(env NOT_SET_ANYWHERE 'pkg')"/>
  <let name="which" value="pkg"/>
  <node pkg="$(var $(var which))" exec="fake_node" name="n"
        args="$(find-pkg-share $(env FAKE_PKG_NAME))/x \$(var pkg) $(dirname) cost$5 'it''s'"/>
</launch>''')
    node = load_launch(path).nodes[0]
    assert node.package == 'fakepkg'
    assert node.arguments == (f'{prefix}/share/fakepkg/x', '$(var', 'pkg)', str(tmp_path),
                              'cost$5', "its")


def test_cli_arguments_parse_and_override(prefix):
    assert parse_cli_arguments(['a:=1', 'b:=x:=y', 'c:=', 'a:=2']) == {
        'a': '2', 'b': 'x:=y', 'c': ''}
    nodes = by_name(load_launch(DATA / 'full.launch.xml', parse_cli_arguments(['mode:=real'])))
    assert nodes['after'].parameters == (Param('mode', 'real'),)


@pytest.mark.parametrize('text, value', [
    ('true', True), ('False', False), ('10', 10), ('-3', -3), ('0.5', 0.5), ('1.0e+3', 1000.0),
    ('base_link', 'base_link'), ('', ''), ('[1.0, 2.0]', (1.0, 2.0)), ('[1, 2]', (1, 2)),
    ('[1, 2.5]', (1.0, 2.5)), ('[a, b]', ('a', 'b')), ('[true, false]', (True, False)),
    ('a: b', 'a: b'), ('~', '~'),
    ('1e3', '1e3'),  # YAML 1.1 (PyYAML, as ros2 launch uses) needs a dot and a sign
])
def test_parameter_values_are_typed_like_ros2_launch(text, value):
    typed = parameter_value(text)
    assert typed == value and type(typed) is type(value)


@pytest.mark.parametrize('text', ['[1, a]', '[]', '[[1], [2]]'])
def test_non_uniform_arrays_are_refused(text):
    with pytest.raises(ValueError, match='one type'):
        parameter_value(text)


@pytest.mark.parametrize('value, text', [
    (True, 'true'), (3, '3'), (0.5, '0.5'), (2.0, '2.0'), ('map', 'map'),
    ('/a/b.yaml', '/a/b.yaml'), ('yes', "'yes'"), ('12', "'12'"), ("it's", "'it''s'"),
    ('', "''"), ((1.0, 2.0), '[1.0, 2.0]'), (('a', 'on'), "[a, 'on']"),
    (float('inf'), '.inf'),
])
def test_parameter_values_render_for_rcl(value, text):
    assert format_parameter_value(value) == text


# --- packages, executables, profiles -------------------------------------------------------

def test_find_package_share(prefix, monkeypatch):
    assert find_package_share('asv_autonomy') == REPO  # source checkout: the repository root
    assert find_package_share('fakepkg') == prefix / 'share/fakepkg'
    with pytest.raises(LaunchError, match="package 'nosuchpkg' not found"):
        find_package_share('nosuchpkg')


def test_find_executable(prefix):
    assert find_executable('fakepkg', 'fake_node') == [str(prefix / 'lib/fakepkg/fake_node')]
    # asv_autonomy executables are console_scripts run by this interpreter (this venv).
    assert find_executable('asv_autonomy', 'asv') == [
        sys.executable, '-c', 'import sys; from asv_autonomy.cli.main import main; '
                              'sys.exit(main())']
    with pytest.raises(LaunchError, match="executable 'nope' of package 'fakepkg' not found"):
        find_executable('fakepkg', 'nope')


def test_missing_executable_error_names_the_node_tag(prefix, tmp_path):
    path = write(tmp_path, '<launch>\n\n  <node pkg="fakepkg" exec="missing_exec"/>\n</launch>')
    node = load_launch(path).nodes[0]
    with pytest.raises(LaunchError) as error:
        node.command()
    assert f'{path}:3' in str(error.value) and "'missing_exec'" in str(error.value)


def test_resolve_launch_file(tmp_path, monkeypatch):
    assert resolve_launch_file('full', DATA) == DATA / 'full.launch.xml'
    assert resolve_launch_file('inner.launch.xml', DATA) == DATA / 'inner.launch.xml'
    monkeypatch.chdir(DATA.parent)
    assert resolve_launch_file('data/full.launch.xml', tmp_path) == DATA / 'full.launch.xml'
    with pytest.raises(LaunchError) as error:
        resolve_launch_file('nosuch', DATA)
    assert "'nosuch'" in str(error.value) and str(DATA) in str(error.value)
    assert 'full, inner, rclpy, supervise' in str(error.value)


def test_default_profiles_live_in_the_package_launch_folder(monkeypatch):
    with pytest.raises(LaunchError) as error:
        resolve_launch_file('nosuch-profile')
    assert str(REPO / 'launch') in str(error.value)


# --- errors name the file and line ------------------------------------------------------

ERROR_CASES = {
    'unknown tag': ('<launch>\n  <arg name="a" default="1"/>\n  <executable cmd="ls"/>\n'
                    '</launch>', 3, '<executable>'),
    'unknown attribute': ('<launch>\n\n  <node pkg="fakepkg" exec="fake_node" '
                          'launch-prefix="gdb"/>\n</launch>', 3, "'launch-prefix'"),
    'unknown child tag': ('<launch>\n  <node pkg="fakepkg" exec="fake_node">\n'
                          '    <env name="A" value="1"/>\n  </node>\n</launch>', 3, '<env>'),
    'unknown substitution': ('<launch>\n  <let name="a"\n       value="x$(command ls)"/>\n'
                             '</launch>', 2, '$(command ls)'),
    'undefined var': ('<launch>\n  <node pkg="fakepkg" exec="fake_node">\n'
                      '    <param name="p" value="$(var nope)"/>\n  </node>\n</launch>',
                      3, "'nope'"),
    'unset env': ('<launch>\n  <let name="a" value="$(env FAKE_UNSET_VARIABLE)"/>\n</launch>',
                  2, "'FAKE_UNSET_VARIABLE'"),
    'unterminated substitution': ('<launch>\n  <let name="a" value="$(var a"/>\n</launch>',
                                  2, 'unterminated'),
    'missing include': ('<launch>\n  <group>\n    <include file="/does/not/exist.launch.xml"/>'
                        '\n  </group>\n</launch>', 3, '/does/not/exist.launch.xml'),
    'missing params file': ('<launch>\n  <node pkg="fakepkg" exec="fake_node">\n\n'
                            '    <param from="/no/params.yaml"/>\n  </node>\n</launch>',
                            4, '/no/params.yaml'),
    'required argument': ('<launch>\n  <arg name="needed"/>\n</launch>', 2, "'needed'"),
    'invalid choice': ('<launch>\n  <arg name="m" default="x">\n    <choice value="y"/>\n'
                       '  </arg>\n</launch>', 2, 'not one of: y'),
    'bad respawn': ('<launch>\n  <node pkg="fakepkg" exec="fake_node" respawn="maybe"/>\n'
                    '</launch>', 2, "'respawn'"),
    'bad output': ('<launch>\n  <node pkg="fakepkg" exec="fake_node" output="file"/>\n'
                   '</launch>', 2, 'output'),
    'bad on_exit': ('<launch>\n  <node pkg="fakepkg" exec="fake_node" on_exit="restart"/>\n'
                    '</launch>', 2, 'on_exit'),
    'bad namespace': ('<launch>\n  <push-ros-namespace namespace="1bad"/>\n</launch>', 2,
                      "'/1bad'"),
    'mixed array': ('<launch>\n  <node pkg="fakepkg" exec="fake_node">\n'
                    '    <param name="p" value="[1, a]"/>\n  </node>\n</launch>', 3, "'p'"),
    'malformed XML': ('<launch>\n  <node pkg="a"\n</launch>\n', 3, 'malformed XML'),
    'wrong root': ('\n<robot/>\n', 2, '<launch>'),
}


@pytest.mark.parametrize('case', sorted(ERROR_CASES))
def test_errors_name_file_line_and_culprit(case, prefix, tmp_path):
    text, line, culprit = ERROR_CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(LaunchError) as error:
        load_launch(path)
    message = str(error.value)
    assert f'{path}:{line}:' in message
    assert culprit in message
    assert '\n' not in message  # asv prints CliError as one line


def test_error_inside_an_included_file_names_that_file(prefix, tmp_path):
    inner = write(tmp_path, '<launch>\n  <node pkg="fakepkg" exec="fake_node"\n'
                            '        name="$(var undefined_here)"/>\n</launch>', 'in.launch.xml')
    path = write(tmp_path, '<launch>\n  <include file="$(dirname)/in.launch.xml"/>\n</launch>')
    with pytest.raises(LaunchError) as error:
        load_launch(path)
    assert f'{inner}:2:' in str(error.value) and "'undefined_here'" in str(error.value)


def test_include_must_pass_required_arguments(prefix):
    path = DATA / 'full.launch.xml'
    text = path.read_text()
    assert text.count('<arg name="label"') == 1  # the include passes `label`; inner needs it
    with pytest.raises(LaunchError) as error:
        load_launch(DATA / 'inner.launch.xml')
    assert f'{DATA / "inner.launch.xml"}:2:' in str(error.value)
    assert 'label:=VALUE' in str(error.value)


def test_missing_launch_file(tmp_path):
    with pytest.raises(LaunchError, match=f'cannot read launch file {tmp_path}/none.launch.xml'):
        load_launch(tmp_path / 'none.launch.xml')


def test_undeclared_argument_is_refused(prefix):
    with pytest.raises(LaunchError) as error:
        load_launch(DATA / 'full.launch.xml', {'mdoe': 'sim'})
    message = str(error.value)
    assert str(DATA / 'full.launch.xml') in message and "'mdoe'" in message
    assert 'declared: label, mode, namespace, use_sim_time' in message


@pytest.mark.parametrize('item', ['novalue', ':=x', ' a:=1', 'a=1'])
def test_malformed_cli_arguments(item):
    with pytest.raises(LaunchError, match='malformed launch argument') as error:
        parse_cli_arguments(['ok:=1', item])
    assert repr(item) in str(error.value) or item in str(error.value)


def test_include_cycle_is_an_error(prefix, tmp_path):
    path = write(tmp_path, '<launch>\n  <include file="$(dirname)/case.launch.xml"/>\n</launch>')
    with pytest.raises(LaunchError, match=f'{path}:2:.*include cycle'):
        load_launch(path)

