"""Node configs from a parameters file without ROS (params_file.py)."""
import dataclasses

import pytest

from asv_autonomy.params_file import ParamsFileError, config_from_parameters, node_parameters
from asv_autonomy.planning.planner import PlannerConfig
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.ros.planner_node import PlannerNodeConfig
from asv_autonomy.sim.world import WorldConfig

PARAMS = """
/**/controller:
  ros__parameters:
    survey_polygon: [0.0, 0.0, 10.0, 0.0, 10.0, 10.0]
    control_rate: 4.0
    vessel:
      mass: 40.0
    vessel.draft: 0.2
    chart.cell_size: 3.0
    unrelated_parameter: 1
other_node:
  ros__parameters:
    control_rate: 99.0
"""


def test_a_section_fills_the_configs_of_its_node(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(PARAMS)
    params = node_parameters(path, 'controller')
    planner = config_from_parameters(PlannerConfig, params)
    assert planner.survey_polygon == (0.0, 0.0, 10.0, 0.0, 10.0, 10.0)   # list -> tuple
    assert planner.mode == PlannerConfig().mode                           # default kept
    vessel = config_from_parameters(VesselParams, params, 'vessel')
    assert (vessel.mass, vessel.draft) == (40.0, 0.2)                     # nested + dotted
    node = config_from_parameters(PlannerNodeConfig, params)
    assert node.control_rate == 4.0
    assert node.chart == dataclasses.replace(WorldConfig(), cell_size=3.0)
    assert node_parameters(path, 'other_node')['control_rate'] == 99.0     # plain name
    assert node_parameters(path, 'absent') == {}


def test_bad_files_and_values_name_the_problem(tmp_path):
    path = tmp_path / 'params.yaml'
    with pytest.raises(ParamsFileError, match='params.yaml'):
        node_parameters(path, 'controller')                               # missing
    path.write_text('a: [1, 2')
    with pytest.raises(ParamsFileError, match='params.yaml'):
        node_parameters(path, 'controller')                               # invalid YAML
    path.write_text('controller:\n  ros__parameters: 3\n')
    with pytest.raises(ParamsFileError, match='ros__parameters'):
        node_parameters(path, 'controller')
    with pytest.raises(ParamsFileError, match=r'params.yaml: PlannerNodeConfig: .*control_rate'):
        config_from_parameters(PlannerNodeConfig, {'control_rate': -1.0}, source=str(path))


def test_the_packaged_mapping_fields_adapt_off_the_update_path():
    from pathlib import Path

    from asv_autonomy.mapping.gp import GPMapperConfig
    params = node_parameters(Path(__file__).parents[1] / 'config' / 'autonomy.yaml', 'mapping')
    for field in ('bathymetry', 'temperature'):
        assert config_from_parameters(GPMapperConfig, params, field).adapt_in_background
    assert not GPMapperConfig().adapt_in_background   # the library stays reproducible
