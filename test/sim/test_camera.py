"""Simulator camera: projection geometry of the mask, obstacles, determinism, config checks."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from asv_autonomy.measurements import InvalidInput
from asv_autonomy.sim.camera import CameraConfig, CameraRenderer


@dataclass(frozen=True)
class Obstacle:
    x: float
    y: float
    radius: float
    height: float
    kind: str


class OpenWater:
    """No land anywhere."""

    def __init__(self, obstacles=()):
        self.obstacles = tuple(obstacles)

    def is_land(self, x, y):
        return np.zeros(np.shape(x), bool)


class StraightShore(OpenWater):
    """Land for x >= shore_x [m] (a shoreline running north-south)."""

    def __init__(self, shore_x, obstacles=()):
        super().__init__(obstacles)
        self.shore_x = shore_x

    def is_land(self, x, y):
        return np.asarray(x) >= self.shore_x


class Island(OpenWater):
    """A round island of radius [m] centred at (cx, cy) [m]."""

    def __init__(self, cx, cy, radius):
        super().__init__()
        self.centre, self.radius = (cx, cy), radius

    def is_land(self, x, y):
        return np.hypot(np.asarray(x) - self.centre[0], np.asarray(y) - self.centre[1]) \
            <= self.radius


def first_water_row(mask):
    """Per column: index of the first navigable row from the top (height if none)."""
    return np.where(mask.any(axis=0), mask.argmax(axis=0), mask.shape[0])


def test_intrinsics_follow_the_field_of_view():
    cam = CameraRenderer(CameraConfig(width=640, height=480, hfov_deg=90.0), OpenWater())
    fx, fy, cx, cy = cam.intrinsics()
    assert fx == pytest.approx(320.0) and fy == pytest.approx(320.0)
    assert (cx, cy) == pytest.approx((319.5, 239.5))


@pytest.mark.parametrize('pitch_deg', [3.0, 10.0, -2.0])
def test_open_water_mask_ends_at_the_horizon(pitch_deg):
    config = CameraConfig(pitch_deg=pitch_deg)
    cam = CameraRenderer(config, OpenWater())
    rgb, mask = cam.render(0.0, 0.0, 0.3, 0.0)
    fx, fy, cx, cy = cam.intrinsics()
    horizon = cy - fy * math.tan(math.radians(pitch_deg))     # looking down raises it
    first = first_water_row(mask)
    assert np.all(np.abs(first - horizon) <= 1.0)
    # Everything below the horizon is water, everything above it is not.
    rows = np.arange(config.height)[:, None]
    np.testing.assert_array_equal(mask, np.broadcast_to(rows >= first[None, :], mask.shape))


@pytest.mark.parametrize('distance', [3.1, 12.37, 47.0, 180.0])
def test_straight_shoreline_projects_to_the_flat_water_row(distance):
    """Land at forward distance d meets the water at v = cy + fy tan(atan(h / d) - pitch)."""
    config = CameraConfig(mount_height=1.5, pitch_deg=4.0)
    x0, y0 = 100.0, -40.0
    cam = CameraRenderer(config, StraightShore(x0 + distance))
    _, mask = cam.render(x0, y0, 0.0, 2.0)
    fx, fy, cx, cy = cam.intrinsics()
    contact = cy + fy * math.tan(math.atan(config.mount_height / distance)
                                 - math.radians(config.pitch_deg))
    first = first_water_row(mask)
    # The first water row is the first pixel centre below the contact line, in every column.
    assert np.all(np.abs(first - (math.floor(contact) + 1)) <= 1)
    assert mask[first.max():].all()


def test_shore_closer_than_the_bottom_row_hides_all_water():
    cam = CameraRenderer(CameraConfig(), StraightShore(1.0))
    _, mask = cam.render(0.0, 0.0, 0.0, 0.0)
    assert not mask.any()


def test_land_is_drawn_above_the_contact_row_and_sky_is_unchanged():
    config = CameraConfig()
    open_rgb, _ = CameraRenderer(config, OpenWater(), seed=4).render(0.0, 0.0, 0.0, 1.0)
    shore_rgb, mask = CameraRenderer(config, StraightShore(60.0), seed=4).render(0.0, 0.0, 0.0,
                                                                                1.0)
    first = int(first_water_row(mask).min())
    land_band = slice(first - 4, first - 1)                   # just above the waterline
    diff = np.abs(open_rgb.astype(int) - shore_rgb.astype(int)).sum(axis=-1)
    assert diff[land_band].mean() > 30.0
    np.testing.assert_array_equal(open_rgb[:20], shore_rgb[:20])


def test_yaw_moves_an_island_across_the_image():
    """An island at bearing b appears at column cx - fx tan(b - yaw) / cos(pitch)."""
    config = CameraConfig()
    bearing, distance = math.radians(10.0), 120.0
    world = Island(distance * math.cos(bearing), distance * math.sin(bearing), 12.0)
    cam = CameraRenderer(config, world)
    fx, fy, cx, cy = cam.intrinsics()
    pitch = math.radians(config.pitch_deg)
    horizon = cy - fy * math.tan(pitch)
    centres = []
    for yaw in (0.0, 0.1, -0.25):
        _, mask = cam.render(0.0, 0.0, yaw, 0.0)
        blocked = np.flatnonzero(first_water_row(mask) > horizon + 1.0)
        assert blocked.size > 10 and np.ptp(blocked) == blocked.size - 1   # one island
        expected = cx - fx * math.tan(bearing - yaw) / math.cos(pitch)
        centres.append(blocked.mean())
        assert blocked.mean() == pytest.approx(expected, abs=2.0)
    # Turning left (yaw up) moves the island right in the image.
    assert centres[1] > centres[0] > centres[2]


def test_buoy_ahead_blocks_its_columns():
    distance, radius, height = 20.0, 0.5, 1.5
    world = OpenWater([Obstacle(distance, 0.0, radius, height, 'buoy')])
    cam = CameraRenderer(CameraConfig(), world)
    rgb, mask = cam.render(0.0, 0.0, 0.0, 0.0)
    _, free = CameraRenderer(CameraConfig(), OpenWater()).render(0.0, 0.0, 0.0, 0.0)
    fx, fy, cx, cy = cam.intrinsics()
    half_width = fx * radius / distance
    removed = free & ~mask
    cols = np.flatnonzero(removed.any(axis=0))
    assert cols.min() >= cx - half_width - 2 and cols.max() <= cx + half_width + 2
    assert cols.size >= 2 * half_width - 2
    # The buoy reaches down to where its near side meets the water.
    pitch = math.radians(CameraConfig().pitch_deg)
    waterline = cy + fy * math.tan(math.atan(1.0 / (distance - radius)) - pitch)
    bottom = np.flatnonzero(removed[:, int(round(cx))]).max()
    assert abs(bottom - waterline) <= 2.0
    assert not (mask & ~free).any()                           # never adds water
    # And it is drawn: its pixels are red-, yellow- or orange-ish (red channel dominant).
    pixels = rgb[removed].astype(int)
    assert np.mean(pixels[:, 0] > pixels[:, 2]) > 0.8


def test_boat_blocks_water_and_land_hides_obstacles_behind_it():
    boat = Obstacle(40.0, 0.0, 3.0, 2.5, 'boat')
    _, free = CameraRenderer(CameraConfig(), OpenWater()).render(0.0, 0.0, 0.0, 0.0)
    _, with_boat = CameraRenderer(CameraConfig(), OpenWater([boat])).render(0.0, 0.0, 0.0, 0.0)
    assert (free & ~with_boat).sum() > 200
    shore = StraightShore(25.0, [boat])
    _, behind = CameraRenderer(CameraConfig(), shore).render(0.0, 0.0, 0.0, 0.0)
    _, bare = CameraRenderer(CameraConfig(), StraightShore(25.0)).render(0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(behind, bare)


def test_output_shapes_and_types():
    config = CameraConfig(width=160, height=120, hfov_deg=60.0)
    rgb, mask = CameraRenderer(config, StraightShore(30.0)).render(1.0, 2.0, 0.5, 0.0)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert mask.shape == (120, 160) and mask.dtype == bool
    assert mask.any() and not mask.all()


def test_render_is_deterministic_and_varies_with_time_and_seed():
    world = StraightShore(80.0, [Obstacle(30.0, 3.0, 0.4, 1.2, 'buoy')])
    a = CameraRenderer(CameraConfig(), world, seed=7)
    b = CameraRenderer(CameraConfig(), world, seed=7)
    rgb1, mask1 = a.render(3.0, -2.0, 0.2, 5.0)
    a.render(10.0, 5.0, 1.0, 6.0)                             # state must not leak
    rgb2, mask2 = a.render(3.0, -2.0, 0.2, 5.0)
    rgb3, mask3 = b.render(3.0, -2.0, 0.2, 5.0)
    np.testing.assert_array_equal(rgb1, rgb2)
    np.testing.assert_array_equal(rgb1, rgb3)
    np.testing.assert_array_equal(mask1, mask2)
    np.testing.assert_array_equal(mask1, mask3)
    later, later_mask = a.render(3.0, -2.0, 0.2, 5.5)         # waves move, geometry does not
    assert np.abs(later.astype(int) - rgb1.astype(int)).mean() > 1.0
    np.testing.assert_array_equal(later_mask, mask1)
    other, other_mask = CameraRenderer(CameraConfig(), world, seed=8).render(3.0, -2.0, 0.2, 5.0)
    assert np.abs(other.astype(int) - rgb1.astype(int)).mean() > 5.0
    np.testing.assert_array_equal(other_mask, mask1)


@pytest.mark.parametrize('field, value, message', [
    ('width', 0, 'image size'),
    ('height', 8, 'image size'),
    ('hfov_deg', 0.0, 'hfov_deg'),
    ('hfov_deg', 180.0, 'hfov_deg'),
    ('mount_height', 0.0, 'mount_height'),
    ('pitch_deg', 60.0, 'pitch_deg'),
    ('pitch_deg', -40.0, 'water at the bottom'),
    ('rate_hz', 0.0, 'rate_hz'),
    ('max_range', 5.0, 'max_range'),
    ('march_samples', 1, 'march_samples'),
    ('land_height_variation', 20.0, 'land_height'),
    ('land_raster_cell', 0.0, 'land_raster_cell'),
    ('reflection_strength', 1.5, 'reflection_strength'),
    ('noise_std', -1.0, 'noise_std'),
])
def test_config_rejects_invalid_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        CameraConfig(**{field: value})


def test_non_finite_pose_is_refused():
    cam = CameraRenderer(CameraConfig(width=64, height=48), OpenWater())
    with pytest.raises(InvalidInput, match='nan'):
        cam.render(float('nan'), 0.0, 0.0, 0.0)


def test_far_jump_keeps_the_land_raster_bounded():
    cam = CameraRenderer(CameraConfig(width=64, height=48), StraightShore(50.0))
    _, near = cam.render(0.0, 0.0, 0.0, 0.0)
    cam.render(5e6, 0.0, 0.0, 0.0)                            # would need a huge raster
    _, again = cam.render(0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(near, again)
