"""boat.launch.xml's drivers accept config/boat.yaml: every parameter exists and is valid,
and a driver whose hardware is absent keeps running (reporting it) instead of crashing.
Real node processes (`make test`)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOAT_YAML = REPO / 'config/boat.yaml'
DRIVERS = {'nmea_driver': 'nmea_node', 'ping1d_driver': 'ping1d_node',
           'mavlink_bridge': 'mavlink_node'}


@pytest.mark.ros
@pytest.mark.parametrize('name', sorted(DRIVERS))
def test_driver_takes_the_boat_parameters_without_its_hardware(ros_env, name, tmp_path):
    params = BOAT_YAML.read_text()
    # No hardware here: point the serial devices at a path that does not exist.
    params = params.replace('/dev/ttyUSB0', str(tmp_path / 'ttyUSB0')).replace(
        '/dev/ttyUSB1', str(tmp_path / 'ttyUSB1')).replace(
        '/dev/ttyACM0', str(tmp_path / 'ttyACM0'))
    params_file = tmp_path / 'boat.yaml'
    params_file.write_text(params)
    process = subprocess.Popen(
        [sys.executable, '-c', f'import sys; from asv_autonomy.ros.{DRIVERS[name]} import main; '
                               'sys.exit(main())',
         '--ros-args', '-r', f'__node:={name}', '--params-file', str(params_file)],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(5.0)
    running = process.poll() is None
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert running, f'{name} exited with {process.returncode}: {output}'
    assert 'no such parameter' not in output and 'Traceback' not in output, output
