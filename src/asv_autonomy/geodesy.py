"""Local ENU tangent plane about a datum (WGS-84), via pyproj.

The ``map`` frame of the topic contract is this plane: x east [m], y north [m], z up [m],
origin at the configured datum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj


@dataclass(frozen=True)
class Datum:
    """Origin of the local ``map`` frame.

    Args:
        latitude: [deg] WGS-84.
        longitude: [deg] WGS-84, -180..180 or 0..360.
        altitude: [m] ellipsoidal height of the origin.
    """

    # Lake Washington (Seattle): a plausible freshwater survey site for the default sim world.
    latitude: float = 47.6205
    longitude: float = -122.2597
    altitude: float = 0.0

    def __post_init__(self):
        if not np.isfinite([self.latitude, self.longitude, self.altitude]).all():
            raise ValueError(f'datum must be finite, got {self}')
        if not -90.0 < self.latitude < 90.0:
            raise ValueError(f'datum latitude {self.latitude} outside (-90, 90) deg')
        if not -180.0 <= self.longitude <= 360.0:
            raise ValueError(f'datum longitude {self.longitude} outside [-180, 360] deg')


class LocalENU:
    """Exact geodetic <-> local ENU conversion (ECEF rotation, no flat-earth approximation).

    All methods are vectorised over numpy arrays of any (matching) shape.
    """

    def __init__(self, datum: Datum):
        self.datum = datum
        self._to_ecef = pyproj.Transformer.from_crs('EPSG:4979', 'EPSG:4978', always_xy=True)
        self._from_ecef = pyproj.Transformer.from_crs('EPSG:4978', 'EPSG:4979', always_xy=True)
        lat, lon = np.radians(datum.latitude), np.radians(datum.longitude)
        self._origin = np.array(self._to_ecef.transform(datum.longitude, datum.latitude,
                                                        datum.altitude))
        # Rows: east, north, up unit vectors expressed in ECEF.
        self._rot = np.array([
            [-np.sin(lon), np.cos(lon), 0.0],
            [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)],
            [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)],
        ])

    def to_enu(self, latitude, longitude, altitude=0.0):
        """Geodetic [deg, deg, m] -> (east, north, up) [m]."""
        lat, lon, alt = np.broadcast_arrays(np.asarray(latitude, float),
                                            np.asarray(longitude, float),
                                            np.asarray(altitude, float))
        ecef = np.stack(self._to_ecef.transform(lon, lat, alt), axis=-1) - self._origin
        enu = ecef @ self._rot.T
        return enu[..., 0], enu[..., 1], enu[..., 2]

    def to_geodetic(self, east, north, up=0.0):
        """Local (east, north, up) [m] -> (latitude [deg], longitude [deg], altitude [m])."""
        e, n, u = np.broadcast_arrays(np.asarray(east, float), np.asarray(north, float),
                                      np.asarray(up, float))
        ecef = np.stack([e, n, u], axis=-1) @ self._rot + self._origin
        lon, lat, alt = self._from_ecef.transform(ecef[..., 0], ecef[..., 1], ecef[..., 2])
        return np.asarray(lat), np.asarray(lon), np.asarray(alt)
