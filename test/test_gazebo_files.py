"""The Gazebo profile's files, checked statically (Gazebo and ros_gz are not installed here).

* urdf/asv.urdf.xacro expands with the `xacro` package; the URDF is a tree of existing links
  with physical inertias, the DESIGN.md frames, and numbers that agree with VesselParams
  and the simulator's sensor configs;
* worlds/lake.sdf has the datum as spherical coordinates, ENU, the systems the boat's
  sensors and plugins need, graded buoyancy with the surface at z = 0, the sim's obstacles;
* every config/gz_bridge.yaml entry maps a contract topic with the contract's type onto a
  Gazebo topic that the URDF/SDF publishes (or, for thrust, subscribes), with the matching
  Gazebo type and direction, and every Gazebo topic the boat offers is bridged;
* launch/gazebo.launch.xml and launch/vrx.launch.xml are for `ros2 launch` (they include
  Python launch files and use $(command)), which `asv launch` refuses: they are checked by
  parsing (well-formed, files they reference exist, our executables exist, autonomy
  included with use_sim_time, remaps onto contract topics).
"""
import importlib
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import xacro
import yaml

from asv_autonomy.cli.launch_xml import LaunchError, load_launch
from asv_autonomy.geodesy import Datum
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.sim.camera import CameraConfig
from asv_autonomy.sim.sensors import GnssConfig, ImuConfig
from asv_autonomy.sim.world import WorldConfig

REPO = Path(__file__).resolve().parents[1]
XACRO = REPO / 'urdf/asv.urdf.xacro'
WORLD = REPO / 'worlds/lake.sdf'
BRIDGE = REPO / 'config/gz_bridge.yaml'
GZ_NAMESPACE = 'asv'   # the xacro namespace the bridge file is written for

# DESIGN.md §2: topic -> ROS type (the topics a Gazebo bridge may carry).
CONTRACT = {
    'clock': 'rosgraph_msgs/msg/Clock',
    'sensors/gps/fix': 'sensor_msgs/msg/NavSatFix',
    'sensors/imu/data': 'sensor_msgs/msg/Imu',
    'sensors/sonar/depth': 'sensor_msgs/msg/Range',
    'sensors/water/temperature': 'sensor_msgs/msg/Temperature',
    'sensors/camera/image_raw': 'sensor_msgs/msg/Image',
    'sensors/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
    'thrusters/left/thrust': 'std_msgs/msg/Float64',
    'thrusters/right/thrust': 'std_msgs/msg/Float64',
    'sim/ground_truth/odometry': 'nav_msgs/msg/Odometry',
}
# ros_gz_bridge's pairing of each ROS type with its Gazebo type.
GZ_TYPE = {
    'rosgraph_msgs/msg/Clock': 'gz.msgs.Clock',
    'sensor_msgs/msg/NavSatFix': 'gz.msgs.NavSat',
    'sensor_msgs/msg/Imu': 'gz.msgs.IMU',
    'sensor_msgs/msg/Image': 'gz.msgs.Image',
    'sensor_msgs/msg/CameraInfo': 'gz.msgs.CameraInfo',
    'std_msgs/msg/Float64': 'gz.msgs.Double',
    'nav_msgs/msg/Odometry': 'gz.msgs.Odometry',
}
# Gazebo's thrusters hold their last command: the bridge takes thrust from the thrust_guard
# node's outputs (contract thrust + e-stop in, DESIGN.md §5), not from the contract topics.
GUARDED = {'actuators/left/thrust': 'std_msgs/msg/Float64',
           'actuators/right/thrust': 'std_msgs/msg/Float64'}
COMMANDS = set(GUARDED)
FRAMES = {'base_link', 'gps_link', 'imu_link', 'sonar_link', 'camera_link'}
WORLD_SYSTEMS = {'gz-sim-physics-system', 'gz-sim-user-commands-system',
                 'gz-sim-scene-broadcaster-system', 'gz-sim-sensors-system',
                 'gz-sim-imu-system', 'gz-sim-navsat-system', 'gz-sim-buoyancy-system',
                 'gz-sim-wind-effects-system'}


def expand(**mappings) -> ET.Element:
    return ET.fromstring(xacro.process_file(str(XACRO), mappings=mappings).toxml())


@pytest.fixture(scope='module')
def urdf():
    return expand()


def _floats(text):
    return [float(v) for v in text.split()]


def _gz_topic(name: str) -> str:
    """Gazebo transport names without a leading slash are relative to the root."""
    return '/' + name.strip('/')


def _plugin(root, filename):
    plugins = [p for p in root.iter('plugin') if p.get('filename') == filename]
    assert plugins, f'no {filename} plugin'
    return plugins


# --- URDF ------------------------------------------------------------------------------------

def test_urdf_is_a_tree_of_existing_links_with_physical_inertias(urdf):
    assert urdf.tag == 'robot'
    links = {link.get('name'): link for link in urdf.findall('link')}
    joints = urdf.findall('joint')
    assert len(links) == len(urdf.findall('link')), 'duplicate link names'
    children = []
    for joint in joints:
        parent, child = joint.find('parent').get('link'), joint.find('child').get('link')
        assert parent in links and child in links, joint.get('name')
        children.append(child)
    assert len(children) == len(set(children)), 'a link with two parents'
    assert set(links) - set(children) == {'base_link'}, 'base_link must be the only root'
    assert FRAMES <= set(links)
    with_mass = 0
    for name, link in links.items():
        inertial = link.find('inertial')
        if inertial is None:
            continue
        with_mass += 1
        assert float(inertial.find('mass').get('value')) > 0.0, name
        i = {k: float(v) for k, v in inertial.find('inertia').attrib.items()}
        tensor = np.array([[i['ixx'], i['ixy'], i['ixz']], [i['ixy'], i['iyy'], i['iyz']],
                           [i['ixz'], i['iyz'], i['izz']]])
        principal = np.linalg.eigvalsh(tensor)
        assert principal.min() > 0.0, name
        # A physical body: each principal moment is at most the sum of the other two.
        assert all(2 * p <= principal.sum() + 1e-12 for p in principal), name
    # Every link that moves (non-fixed joint) and the root carry mass.
    moving = {j.find('child').get('link') for j in joints if j.get('type') != 'fixed'}
    assert all(links[name].find('inertial') is not None for name in moving | {'base_link'})
    assert with_mass == 3


def test_boat_matches_the_vessel_model(urdf):
    vessel = VesselParams()
    masses = [float(m.get('value')) for m in urdf.iter('mass')]
    assert sum(masses) == pytest.approx(vessel.mass)
    base = urdf.find("link[@name='base_link']/inertial/inertia")
    assert float(base.get('izz')) == pytest.approx(vessel.inertia_z)
    thrusters = {j.get('name'): j for j in urdf.findall('joint') if 'thruster' in j.get('name')}
    assert set(thrusters) == {'left_thruster_joint', 'right_thruster_joint'}
    for name, side in (('left_thruster_joint', 1.0), ('right_thruster_joint', -1.0)):
        joint = thrusters[name]
        assert joint.get('type') == 'continuous'
        x, y, _ = _floats(joint.find('origin').get('xyz'))
        assert x < 0.0 and y == pytest.approx(side * vessel.thruster_y)   # stern, FLU
        assert _floats(joint.find('axis').get('xyz')) == [1.0, 0.0, 0.0]  # + pushes ahead
    for plugin in _plugin(urdf, 'gz-sim-thruster-system'):
        assert float(plugin.findtext('max_thrust_cmd')) == vessel.max_thrust_forward
        assert float(plugin.findtext('min_thrust_cmd')) == -vessel.max_thrust_reverse
        assert plugin.findtext('use_angvel_cmd') == 'false'   # commands are newtons
        assert plugin.findtext('joint_name') in thrusters


def test_thruster_limits_and_namespace_are_xacro_arguments():
    urdf = expand(namespace='boat2', max_thrust='30.0', max_reverse_thrust='20.0')
    plugins = _plugin(urdf, 'gz-sim-thruster-system')
    assert {float(p.findtext('max_thrust_cmd')) for p in plugins} == {30.0}
    assert {float(p.findtext('min_thrust_cmd')) for p in plugins} == {-20.0}
    assert {p.findtext('namespace') for p in plugins} == {'boat2'}
    published, subscribed = _gz_topics_of_the_boat(urdf)
    assert all(t.startswith('/boat2/') for t in (published | subscribed) - {'/clock'})
    assert len(published) == 6 and len(subscribed) == 2


def test_hydrodynamics_are_the_vessel_models(urdf):
    """Fossen derivatives (negative) of VesselParams' added mass and damping; the sway
    damping acts at lateral_resistance_x, which couples sway and yaw linearly."""
    p = VesselParams()
    (plugin,) = _plugin(urdf, 'gz-sim-hydrodynamics-system')
    value = {child.tag: child.text for child in plugin}
    assert value['link_name'] == 'base_link'
    xl = p.lateral_resistance_x
    expected = {
        'xDotU': -p.added_mass_surge, 'yDotV': -p.added_mass_sway, 'nDotR': -p.added_mass_yaw,
        'xU': -p.damping_surge_linear, 'xUabsU': -p.damping_surge_quadratic,
        'yV': -p.damping_sway_linear, 'yVabsV': -p.damping_sway_quadratic,
        'yR': -p.damping_sway_linear * xl, 'nV': -p.damping_sway_linear * xl,
        'nR': -(p.damping_yaw_linear + p.damping_sway_linear * xl ** 2),
        'nRabsR': -p.damping_yaw_quadratic,
    }
    for name, number in expected.items():
        assert float(value[name]) == pytest.approx(number), name
    for name in ('zW', 'kP', 'mQ'):   # heave/roll/pitch damped
        assert float(value[name]) < 0.0


def test_hulls_float_with_a_small_draft(urdf):
    """Graded buoyancy of the box collisions must carry the boat: displacement at the
    waterline the xacro assumes (sonar 0.1 m below it) equals the mass."""
    boxes = [(_floats(c.find('origin').get('xyz')), _floats(c.find('geometry/box').get('size')))
             for c in urdf.findall("link[@name='base_link']/collision")]
    assert len(boxes) == 2
    area = sum(size[0] * size[1] for _, size in boxes)
    draft = VesselParams().mass / 1000.0 / area          # [m] below the hull bottom
    bottom = boxes[0][0][2] - boxes[0][1][2] / 2
    waterline = bottom + draft                            # [m] in base_link
    assert 0.03 < draft < boxes[0][1][2] / 2              # floats, base_link above water
    sonar = urdf.find("joint[@name='sonar_link_joint']/origin")
    assert waterline - _floats(sonar.get('xyz'))[2] == pytest.approx(0.1, abs=0.01)
    assert _floats(sonar.get('rpy'))[1] == pytest.approx(math.pi / 2)   # x axis down


def test_sensors_match_the_simulators(urdf):
    sensors = {}
    for gazebo in urdf.findall('gazebo'):
        for sensor in gazebo.findall('sensor'):
            sensors[sensor.get('type')] = (gazebo.get('reference'), sensor)
    assert set(sensors) == {'navsat', 'imu', 'camera'}
    for kind, frame in (('navsat', 'gps_link'), ('imu', 'imu_link'),
                        ('camera', 'camera_link')):
        reference, sensor = sensors[kind]
        assert reference == frame and sensor.findtext('gz_frame_id') == frame
    assert float(sensors['navsat'][1].findtext('update_rate')) == GnssConfig().rate_hz
    assert float(sensors['imu'][1].findtext('update_rate')) == ImuConfig().rate_hz
    assert sensors['imu'][1].findtext('imu/orientation_reference_frame/localization') == 'ENU'
    camera, config = sensors['camera'][1], CameraConfig()
    assert float(camera.findtext('update_rate')) == config.rate_hz
    assert int(camera.findtext('camera/image/width')) == config.width
    assert int(camera.findtext('camera/image/height')) == config.height
    assert camera.findtext('camera/image/format') == 'R8G8B8'
    assert math.degrees(float(camera.findtext('camera/horizontal_fov'))) == \
        pytest.approx(config.hfov_deg)
    origin = urdf.find("joint[@name='camera_link_joint']/origin")
    assert math.degrees(_floats(origin.get('rpy'))[1]) == pytest.approx(config.pitch_deg)


# --- SDF world -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def world():
    root = ET.parse(WORLD).getroot()
    assert root.tag == 'sdf'
    assert tuple(int(v) for v in root.get('version').split('.')) >= (1, 9)
    (world,) = root.findall('world')
    return world


def test_world_is_the_datums_enu_frame(world):
    datum = Datum()
    sc = world.find('spherical_coordinates')
    assert sc.findtext('surface_model') == 'EARTH_WGS84'
    assert sc.findtext('world_frame_orientation') == 'ENU'
    assert float(sc.findtext('latitude_deg')) == datum.latitude
    assert float(sc.findtext('longitude_deg')) == datum.longitude
    assert float(sc.findtext('elevation')) == datum.altitude
    assert float(sc.findtext('heading_deg')) == 0.0


def test_world_has_the_systems_and_water(world):
    systems = {p.get('filename'): p for p in world.findall('plugin')}
    assert WORLD_SYSTEMS <= set(systems), WORLD_SYSTEMS - set(systems)
    assert systems['gz-sim-sensors-system'].findtext('render_engine') == 'ogre2'
    graded = systems['gz-sim-buoyancy-system'].find('graded_buoyancy')
    assert float(graded.findtext('default_density')) == 1000.0
    change = graded.find('density_change')
    assert float(change.findtext('above_depth')) == 0.0 and float(change.findtext('density')) < 2
    assert world.find('physics') is not None and world.find('scene') is not None
    assert world.find("light[@type='directional']") is not None
    assert len(_floats(world.findtext('wind/linear_velocity'))) == 3
    models = {m.get('name'): m for m in world.findall('model')}
    water = models['water_surface']
    assert water.find('.//collision') is None and water.find('.//plane') is not None
    assert {'lake_bed', 'shore'} <= set(models)


def test_world_has_the_simulators_obstacles(world):
    config = WorldConfig()
    for prefix, positions in (('buoy_', config.buoy_positions),
                              ('moored_boat_', config.boat_positions)):
        placed = sorted(tuple(_floats(m.findtext('pose'))[:2]) for m in world.findall('model')
                        if m.get('name').startswith(prefix))
        assert placed == sorted(zip(positions[::2], positions[1::2]))


# --- bridge ----------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def bridge():
    entries = yaml.safe_load(BRIDGE.read_text())
    assert isinstance(entries, list) and entries   # ros_gz_bridge wants a YAML sequence
    return entries


def _gz_topics_of_the_boat(urdf):
    """Gazebo topics published (sensors, odometry) and subscribed (thrusters) by the boat."""
    published = {_gz_topic(t.text) for t in urdf.iter('topic')
                 if t.text.startswith('/')}   # sensor <topic>s are absolute
    published |= {_gz_topic(t.text) for t in urdf.iter('camera_info_topic')}
    published |= {_gz_topic(p.findtext('odom_topic'))
                  for p in _plugin(urdf, 'gz-sim-odometry-publisher-system')}
    # Thruster system: {namespace}/{topic}.
    subscribed = {_gz_topic(f"{p.findtext('namespace')}/{p.findtext('topic')}")
                  for p in _plugin(urdf, 'gz-sim-thruster-system')}
    published.add('/clock')   # gz sim publishes the world clock on /clock
    return published, subscribed


def test_every_bridge_entry_is_a_contract_topic_with_its_type(bridge):
    keys = {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction'}
    seen = set()
    for entry in bridge:
        assert keys <= set(entry) <= keys | {'lazy', 'publisher_queue', 'subscriber_queue'}
        topic = entry['ros_topic_name']
        # Relative names (they follow the namespace), except the global clock.
        assert topic == '/clock' or not topic.startswith('/'), topic
        name = topic.lstrip('/')
        bridged = {**CONTRACT, **GUARDED}
        assert name in bridged, f'{topic} is neither a contract topic nor a guarded output'
        assert name not in ('thrusters/left/thrust', 'thrusters/right/thrust'), \
            'unguarded thrust bridged to Gazebo'
        assert entry['ros_type_name'] == bridged[name], topic
        assert entry['gz_type_name'] == GZ_TYPE[entry['ros_type_name']], topic
        wanted = 'ROS_TO_GZ' if name in COMMANDS else 'GZ_TO_ROS'
        assert entry['direction'] == wanted, topic
        seen.add(name)
    assert len(seen) == len(bridge), 'a topic bridged twice'
    assert {'clock', 'sensors/gps/fix', 'sensors/imu/data', 'sensors/camera/image_raw',
            'sensors/camera/camera_info', *COMMANDS} <= seen


def test_bridge_gazebo_topics_are_the_ones_the_boat_and_world_use(bridge, urdf):
    published, subscribed = _gz_topics_of_the_boat(urdf)
    from_gz = {_gz_topic(e['gz_topic_name']) for e in bridge if e['direction'] == 'GZ_TO_ROS'}
    to_gz = {_gz_topic(e['gz_topic_name']) for e in bridge if e['direction'] == 'ROS_TO_GZ'}
    assert from_gz == published
    assert to_gz == subscribed
    assert all(t == '/clock' or t.startswith(f'/{GZ_NAMESPACE}/') for t in from_gz | to_gz)
    # Each thruster's command arrives from its own contract topic.
    for entry in bridge:
        if entry['direction'] == 'ROS_TO_GZ':
            side = entry['ros_topic_name'].split('/')[1]
            assert f'/thrusters/{side}/' in entry['gz_topic_name']


# --- launch files ----------------------------------------------------------------------------

SHARE = re.compile(r'\$\(find-pkg-share asv_autonomy\)/([^\s"\')]+)')


@pytest.mark.parametrize('name', ['gazebo.launch.xml', 'vrx.launch.xml'])
def test_ros2_launch_files_parse_and_reference_existing_files(name):
    path = REPO / 'launch' / name
    text = path.read_text()
    root = ET.fromstring(text)
    assert root.tag == 'launch'
    for relative in SHARE.findall(text):
        assert (REPO / relative).is_file(), relative
    for node in root.iter('node'):
        if node.get('pkg') == 'asv_autonomy':
            module = importlib.import_module(f"asv_autonomy.ros.{node.get('exec')}")
            assert callable(module.main)
    includes = [i for i in root.iter('include') if i.get('file').endswith('autonomy.launch.xml')]
    assert len(includes) == 1
    args = {a.get('name'): a.get('value') for a in includes[0].findall('arg')}
    assert args['use_sim_time'] == 'true'
    for remap in root.iter('set_remap'):
        assert remap.get('from') in CONTRACT, remap.get('from')
    # Not the `asv launch` subset: refused with a clear error rather than misread.
    with pytest.raises(LaunchError):
        load_launch(path, {})


def test_gazebo_launch_wires_world_boat_bridge_and_sonar():
    root = ET.parse(REPO / 'launch/gazebo.launch.xml').getroot()
    defaults = {a.get('name'): a.get('default') for a in root.findall('arg')}
    assert defaults['world'].endswith('/worlds/lake.sdf')
    assert defaults['bridge_config'].endswith('/config/gz_bridge.yaml')
    nodes = {(n.get('pkg'), n.get('exec')): n for n in root.iter('node')}
    assert set(nodes) == {('robot_state_publisher', 'robot_state_publisher'),
                          ('ros_gz_sim', 'create'), ('ros_gz_bridge', 'parameter_bridge'),
                          ('asv_autonomy', 'gz_sonar_node'),
                          ('asv_autonomy', 'thrust_guard_node')}
    from asv_autonomy.ros.thrust_guard_node import ThrustGuardNodeConfig
    assert set(ThrustGuardNodeConfig().output_topics) == COMMANDS
    description = nodes['robot_state_publisher', 'robot_state_publisher'].find(
        "param[@name='robot_description']").get('value')
    assert f'urdf/asv.urdf.xacro namespace:={GZ_NAMESPACE}' in description
    assert '-topic robot_description' in nodes['ros_gz_sim', 'create'].get('args')
    assert '-world lake' in nodes['ros_gz_sim', 'create'].get('args')
    assert ET.parse(WORLD).getroot().find('world').get('name') == 'lake'
    bridge_params = {p.get('name'): p.get('value')
                     for p in nodes['ros_gz_bridge', 'parameter_bridge'].findall('param')}
    assert bridge_params['config_file'] == '$(var bridge_config)'
    for node in nodes.values():
        params = {p.get('name'): p.get('value') for p in node.findall('param')}
        assert params.get('use_sim_time') == 'true' or node.get('exec') == 'create'
    # The config file of the Gazebo-side nodes only sets parameters that exist.
    config = yaml.safe_load((REPO / 'config/gazebo.yaml').read_text())
    from asv_autonomy.drivers.sonar_grid import SonarGridConfig
    from asv_autonomy.ros.gz_sonar_node import GzSonarNodeConfig
    params = config['/**/gz_sonar']['ros__parameters']
    known = {f.name for cls in (SonarGridConfig, GzSonarNodeConfig) for f in fields(cls)}
    assert set(params) <= known
    assert set(config) <= {'/**/gz_sonar', '/**/thrust_guard'}


def test_vrx_thrust_goes_through_the_guard():
    root = ET.parse(REPO / 'launch/vrx.launch.xml').getroot()
    guard = [n for n in root.iter('node') if n.get('exec') == 'thrust_guard_node']
    assert len(guard) == 1
    remaps = {r.get('from'): r.get('to') for r in guard[0].findall('remap')}
    assert remaps == {'actuators/left/thrust': '/wamv/thrusters/left/thrust',
                      'actuators/right/thrust': '/wamv/thrusters/right/thrust'}
    # The planner's contract thrust is not pointed at VRX directly (it would bypass §5).
    assert not any('thrust' in (r.get('from') or '') for r in root.iter('set_remap'))
