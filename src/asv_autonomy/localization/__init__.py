"""localization: GPS + IMU extended Kalman filter in the local ENU ``map`` frame."""
from .localizer import LocalizationConfig, Localizer, LocalizerStatus

__all__ = ['LocalizationConfig', 'Localizer', 'LocalizerStatus']
