"""mapping: streaming sparse spatio-temporal Gaussian-process maps of environmental fields."""
from .drifting import DriftingFieldMapper, Mapper, load_mapper, make_mapper
from .gp import GPMapper, GPMapperConfig
from .kernels import AttentiveKernel, StationaryKernel, make_kernel

__all__ = ['AttentiveKernel', 'DriftingFieldMapper', 'GPMapper', 'GPMapperConfig', 'Mapper',
           'StationaryKernel', 'load_mapper', 'make_kernel', 'make_mapper']
