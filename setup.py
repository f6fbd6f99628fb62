"""ament_python package with a src/ layout (colcon on a ROS 2 install, pip everywhere else)."""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'asv_autonomy'


def share(folder, pattern='*'):
    """data_files entry installing ``folder/pattern`` into share/<pkg>/<folder>."""
    files = [f for f in glob(os.path.join(folder, pattern)) if os.path.isfile(f)]
    return (os.path.join('share', PACKAGE, folder), files)


NODES = {
    'sim_node': 'asv_autonomy.ros.sim_node:main',
    'localization_node': 'asv_autonomy.ros.localization_node:main',
    'mapping_node': 'asv_autonomy.ros.mapping_node:main',
    'baseline_controller_node': 'asv_autonomy.ros.baseline_controller_node:main',
    'planner_node': 'asv_autonomy.ros.planner_node:main',
    'bag_player_node': 'asv_autonomy.ros.bag_player_node:main',
    'nmea_node': 'asv_autonomy.ros.nmea_node:main',
    'ping1d_node': 'asv_autonomy.ros.ping1d_node:main',
    'mavlink_node': 'asv_autonomy.ros.mavlink_node:main',
    'gz_sonar_node': 'asv_autonomy.ros.gz_sonar_node:main',
    'thrust_guard_node': 'asv_autonomy.ros.thrust_guard_node:main',
    'segmentation_node': 'asv_autonomy.ros.segmentation_node:main',
    'anomaly_node': 'asv_autonomy.ros.anomaly_node:main',
}

setup(
    name=PACKAGE,
    version='0.1.0',
    package_dir={'': 'src'},
    packages=find_packages('src'),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        (os.path.join('share', PACKAGE), ['package.xml']),
        share('launch', '*.launch.xml'),
        share('config', '*.yaml'),
        share('config', '*.xml'),
        share('urdf'),
        share('worlds'),
        share('models'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='asv_autonomy maintainers',
    maintainer_email='asv-autonomy@example.org',
    description='Autonomy stack for an autonomous surface vehicle',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': ['asv = asv_autonomy.cli.main:main']
        + [f'{name} = {target}' for name, target in NODES.items()],
    },
)
