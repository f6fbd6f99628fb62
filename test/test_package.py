"""The package is what colcon and `ros2 launch` expect, and every launch file loads."""
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from asv_autonomy.cli.launch_xml import find_executable, load_launch

REPO = Path(__file__).resolve().parents[1]
# Written for `ros2 launch` with ros_gz / vrx_gz (Python includes, $(command), set_remap):
# `asv launch` refuses them; test/test_gazebo_files.py checks them by parsing.
ROS2_ONLY = {'gazebo.launch.xml', 'vrx.launch.xml'}
ALL_LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.xml'))
LAUNCH_FILES = [p for p in ALL_LAUNCH_FILES if p.name not in ROS2_ONLY]
# Arguments without a default.
REQUIRED_ARGS = {'replay.launch.xml': {'bag': '/data/mission.bag'}}


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.get('format') == '3' and root.findtext('name') == 'asv_autonomy'
    assert root.find('export/build_type').text == 'ament_python'
    depends = {d.text for d in root.iter('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'nav_msgs', 'diagnostic_msgs', 'rosgraph_msgs'} <= depends
    assert (REPO / 'resource' / 'asv_autonomy').is_file()


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_loads_and_its_executables_exist(path):
    plan = load_launch(path, REQUIRED_ARGS.get(path.name, {}))
    assert plan.nodes
    scripts = {ep.name for ep in entry_points(group='console_scripts')}
    for node in plan.nodes:
        assert node.package != 'asv_autonomy' or node.executable in scripts, node
        assert find_executable(node.package, node.executable)


def test_autonomy_graph_is_listed_once():
    """Profiles include autonomy.launch.xml; none lists an autonomy node again."""
    # By node name: a profile may pick the controller's executable (replay: the baseline).
    autonomy = {n.name for n in load_launch(REPO / 'launch/autonomy.launch.xml').nodes}
    for path in LAUNCH_FILES:
        names = [n.name for n in load_launch(path, REQUIRED_ARGS.get(path.name, {})).nodes]
        assert len(names) == len(set(names)), path
        if path.name != 'autonomy.launch.xml':
            assert autonomy <= set(names), path
    for name in ROS2_ONLY:
        root = ET.parse(REPO / 'launch' / name).getroot()
        assert not autonomy & {n.get('name') for n in root.iter('node')}, name
        assert [i for i in root.iter('include')
                if i.get('file').endswith('/autonomy.launch.xml')], name
