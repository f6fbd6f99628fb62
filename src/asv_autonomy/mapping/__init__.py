"""mapping: streaming sparse spatio-temporal Gaussian-process maps of environmental fields."""
from .gp import GPMapper, GPMapperConfig
from .kernels import AttentiveKernel, StationaryKernel, make_kernel

__all__ = ['AttentiveKernel', 'GPMapper', 'GPMapperConfig', 'StationaryKernel', 'make_kernel']
