"""Forward camera of the built-in simulator: an OpenCV/numpy render plus the true water mask.

Geometry is a pinhole camera (no distortion) at ``mount_height`` above a flat water plane,
looking along the bow and pitched down by ``pitch_deg``; the boat's roll and pitch are not
modelled, so the horizon is a fixed image row. The shoreline is found by ray-marching every
image column over the water plane (all columns at once, geometric distance samples up to
``max_range``) on a lazily filled raster of ``world.is_land`` (the world is assumed static),
then bisecting the first crossing with the exact ``world.is_land``; land is drawn as a wall
of trees and hills standing on that contact line. Water beyond ``max_range`` counts as
open water up to the horizon. Obstacles (``world.obstacles``) are drawn as 3-D shapes
(buoys: cylinders with a cone top, boats: hull and cabin) in far-to-near order.

What does not depend on the pose (ray geometry, sky panorama, noise textures, base water
colours) is built once in the constructor. The look of a scene (sun position, colours, cloud
cover, wind direction) is drawn from ``seed``; each frame is a deterministic function of
(seed, pose, t).

Image frame: u right, v down, pixel centres at integer coordinates. Level camera frame used
internally: F forward (horizontal, along the bow), L left, Z up, origin at the lens.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from asv_autonomy.measurements import InvalidInput

_TWO_PI = 2.0 * math.pi
_WAVE_LEVELS = 6          # mip levels of the wave textures (256 .. 8 texels)
_NOISE_FRAMES = 6         # pre-drawn sensor-noise frames, picked per frame by a hash


@dataclass(frozen=True)
class CameraConfig:
    """Forward camera of the simulator.

    Args:
        width, height: [px] image size.
        hfov_deg: [deg] horizontal field of view (square pixels, so fy = fx).
        mount_height: [m] lens height above the water plane.
        pitch_deg: [deg] down-tilt of the optical axis (positive looks down).
        rate_hz: [Hz] frame rate used by the simulator.
        max_range: [m] ray-march distance; water beyond it counts as open water up to the
            horizon.
        march_samples: geometric distance samples per column before bisection.
        refine_steps: bisection steps (exact ``is_land``) on the first land crossing of
            each column.
        land_raster_cell: [m] cell of the lazily filled ``is_land`` raster the march runs
            on (the world is assumed static); the crossing is then refined exactly.
        land_height: [m] mean height of the shore (tree line / hills) above the water.
        land_height_variation: [m] amplitude of the hills on top of ``land_height``.
        haze_distance: [m] typical e-folding distance of the aerial-perspective haze (each
            seed scales it by 0.35 .. 1.3: clear to hazy days).
        wave_texel: [m] size of one texel of the finest wave texture.
        glare_strength: scale of the sun glitter on the water (0 disables it).
        reflection_strength: [0, 1] opacity of the shore's mirror image in the water.
        noise_std: [DN] standard deviation of the sensor noise on the 8-bit image.
        blur_sigma: [px] Gaussian optical blur (0 disables it).
    """

    width: int = 512
    height: int = 384
    hfov_deg: float = 70.0
    mount_height: float = 1.0
    pitch_deg: float = 3.0
    rate_hz: float = 2.0
    max_range: float = 600.0
    march_samples: int = 128
    refine_steps: int = 7
    land_raster_cell: float = 1.0
    land_height: float = 9.0
    land_height_variation: float = 5.0
    haze_distance: float = 1500.0
    wave_texel: float = 0.08
    glare_strength: float = 1.0
    reflection_strength: float = 0.65
    noise_std: float = 3.0
    blur_sigma: float = 0.6

    def __post_init__(self):
        if self.width < 16 or self.height < 16:
            raise ValueError(f'image size must be at least 16x16 px, '
                             f'got {self.width}x{self.height}')
        if not 1.0 <= self.hfov_deg <= 170.0:
            raise ValueError(f'hfov_deg must be in [1, 170], got {self.hfov_deg}')
        if not self.mount_height > 0.0:
            raise ValueError(f'mount_height must be > 0 m, got {self.mount_height}')
        if not -45.0 < self.pitch_deg < 45.0:
            raise ValueError(f'pitch_deg must be in (-45, 45), got {self.pitch_deg}')
        half_vfov = math.atan((self.height - 1) / self.width
                              * math.tan(math.radians(self.hfov_deg) / 2.0))
        if math.radians(self.pitch_deg) + half_vfov < math.radians(1.0):
            raise ValueError(f'pitch_deg {self.pitch_deg} leaves less than 1 deg of water at the '
                             'bottom of the image')
        if not self.rate_hz > 0.0:
            raise ValueError(f'rate_hz must be > 0, got {self.rate_hz}')
        if not self.max_range > 10.0 * self.mount_height:
            raise ValueError(f'max_range must exceed 10 x mount_height, got {self.max_range} m')
        if self.march_samples < 2 or self.refine_steps < 0:
            raise ValueError(f'need march_samples >= 2 and refine_steps >= 0, got '
                             f'{self.march_samples}, {self.refine_steps}')
        if not self.land_height > 0.0 or not 0.0 <= self.land_height_variation < self.land_height:
            raise ValueError('need land_height > 0 and 0 <= land_height_variation < land_height, '
                             f'got {self.land_height}, {self.land_height_variation}')
        for name in ('haze_distance', 'wave_texel', 'land_raster_cell'):
            if not getattr(self, name) > 0.0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        for name in ('glare_strength', 'noise_std', 'blur_sigma'):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if not 0.0 <= self.reflection_strength <= 1.0:
            raise ValueError(f'reflection_strength must be in [0, 1], '
                             f'got {self.reflection_strength}')


def _periodic_noise(rng: np.random.Generator, shape: tuple[int, int], wavelength: float,
                    bandwidth: float = 0.6, elongation: tuple[float, float] = (1.0, 1.0),
                    direction: float | None = None) -> np.ndarray:
    """Tileable band-limited noise, zero mean, unit std.

    Args:
        shape: (rows, cols) of the texture.
        wavelength: [texels] dominant wavelength.
        bandwidth: relative width of the log-normal spectral peak.
        elongation: (row, col) factors on the feature size along each axis.
        direction: [rad] if given, wave crests are preferentially perpendicular to it.

    Returns:
        float32 array of ``shape``.
    """
    ky = np.fft.fftfreq(shape[0])[:, None] * elongation[0]
    kx = np.fft.rfftfreq(shape[1])[None, :] * elongation[1]
    k = np.hypot(kx, ky)
    k[0, 0] = 1e-9
    spectrum = np.exp(-0.5 * (np.log(k * wavelength) / bandwidth) ** 2)
    if direction is not None:
        spectrum *= 0.25 + np.cos(np.arctan2(ky, kx) - direction) ** 2
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * spectrum, s=shape)
    field -= field.mean()
    return (field / field.std()).astype(np.float32)


class _LandRaster:
    """Lazily filled raster of a static ``is_land``, grown tile by tile as the view needs it.

    Cell (i, j) holds ``is_land`` at its centre ((i + 0.5) * cell, (j + 0.5) * cell). Every
    tile inside the bounding box of a query is filled (once), which keeps later look-ups a
    plain array index. When growing would exceed ``max_cells`` the raster restarts from the
    query's bounding box (a boat that travels far, or a teleport).
    """

    def __init__(self, is_land, cell: float, tile: int = 64, max_cells: int = 64_000_000):
        self._is_land = is_land
        self._cell = cell
        self._tile = tile
        self._max_tiles = max_cells // tile ** 2
        self._t0 = np.zeros(2, np.int64)               # tile index (x, y) of land[0, 0]
        self._land = np.zeros((0, 0), bool)            # [y cell, x cell]
        self._filled = np.zeros((0, 0), bool)          # [y tile, x tile]

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Nearest-cell land flags at map points x, y [m] (any matching shapes)."""
        ix = np.floor(x * (1.0 / self._cell)).astype(np.int64)
        iy = np.floor(y * (1.0 / self._cell)).astype(np.int64)
        lo = np.array([ix.min(), iy.min()]) // self._tile
        hi = np.array([ix.max(), iy.max()]) // self._tile + 1
        self._cover(lo, hi)
        (x0, y0), (x1, y1) = lo - self._t0, hi - self._t0
        missing = np.argwhere(~self._filled[y0:y1, x0:x1])
        if missing.size:
            self._fill(missing + (y0, x0))
        ox, oy = self._t0 * self._tile
        return self._land[iy - oy, ix - ox]

    def _cover(self, lo, hi):
        """Grow the raster so that tiles lo .. hi - 1 (x, y) lie inside it."""
        t1 = self._t0 + np.array(self._filled.shape[::-1])
        if self._filled.size and (lo >= self._t0).all() and (hi <= t1).all():
            return
        keep = self._filled.size > 0
        new0 = np.minimum(lo, self._t0) if keep else lo
        new1 = np.maximum(hi, t1) if keep else hi
        if keep and np.prod(new1 - new0) > self._max_tiles:
            keep, new0, new1 = False, lo, hi
        filled = np.zeros((new1 - new0)[::-1], bool)
        land = np.zeros(tuple((new1 - new0)[::-1] * self._tile), bool)
        if keep:
            dx, dy = self._t0 - new0
            ny, nx = self._filled.shape
            filled[dy:dy + ny, dx:dx + nx] = self._filled
            t = self._tile
            land[dy * t:(dy + ny) * t, dx * t:(dx + nx) * t] = self._land
        self._t0, self._filled, self._land = new0, filled, land

    def _fill(self, tiles):
        """Evaluate ``is_land`` on every cell centre of the (y tile, x tile) rows of tiles."""
        t = self._tile
        offs = np.arange(t)
        cy = (tiles[:, 0:1] * t + offs[None, :])                 # (n, t) raster rows
        cx = (tiles[:, 1:2] * t + offs[None, :])                 # (n, t) raster columns
        rows = np.broadcast_to(cy[:, :, None], (len(tiles), t, t))
        cols = np.broadcast_to(cx[:, None, :], (len(tiles), t, t))
        ox, oy = self._t0 * t
        x = (cols + ox + 0.5) * self._cell
        y = (rows + oy + 0.5) * self._cell
        flags = np.asarray(self._is_land(x.ravel(), y.ravel()), bool).reshape(rows.shape)
        self._land[rows, cols] = flags
        self._filled[tiles[:, 0], tiles[:, 1]] = True


def _mix(a, b, w):
    """Linear blend a -> b by weight w (broadcasting)."""
    return a + (b - a) * w


class CameraRenderer:
    """Renders the forward camera of the simulated boat.

    Args:
        config: camera geometry and look.
        world: duck-typed world: ``is_land(x, y) -> bool ndarray`` (vectorised, map ENU [m])
            and ``obstacles`` (objects with ``x, y, radius, height`` [m] and ``kind`` in
            'buoy' | 'boat'; an optional ``yaw`` [rad] orients a boat).
        seed: selects the scene's look (sun, colours, clouds, textures).
    """

    def __init__(self, config: CameraConfig, world, seed: int = 0):
        self.config = config
        self.world = world
        self.seed = int(seed)
        c = config
        self._fx = 0.5 * c.width / math.tan(math.radians(c.hfov_deg) / 2.0)
        self._fy = self._fx
        self._cx, self._cy = (c.width - 1) / 2.0, (c.height - 1) / 2.0
        pitch = math.radians(c.pitch_deg)
        self._sp, self._cp = math.sin(pitch), math.cos(pitch)
        rng = np.random.default_rng(self.seed)
        self._style(rng)
        self._build_geometry()
        self._build_march()
        self._raster = _LandRaster(world.is_land, config.land_raster_cell)
        self._build_textures(rng)
        self._build_sky(rng)
        self._build_water()
        shape = (_NOISE_FRAMES, config.height, config.width, 3)
        self._noise = rng.normal(0.0, config.noise_std, shape).astype(np.float32)
        # Lens vignetting: a third of the natural cos^4 fall-off (lens-corrected camera).
        cos_off = 1.0 / np.sqrt(1.0 + self._a[None, :] ** 2
                                + ((self._rows[:, None] - self._cy) / self._fy) ** 2)
        vignette = (1.0 - 0.35 * (1.0 - cos_off ** 4)).astype(np.float32)
        self._vignette = np.repeat(vignette[..., None], 3, axis=2)

    # ------------------------------------------------------------------ public API
    def intrinsics(self) -> tuple[float, float, float, float]:
        """Pinhole intrinsics (fx, fy, cx, cy) [px]; no distortion."""
        return self._fx, self._fy, self._cx, self._cy

    def render(self, x: float, y: float, yaw: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Render one frame.

        Args:
            x, y: [m] camera position in ``map`` (ENU).
            yaw: [rad] heading of the bow, from east, counter-clockwise.
            t: [s] time (moves the waves and the glitter).

        Raises:
            InvalidInput: ('nan') for a non-finite pose or time.

        Returns:
            rgb: (H, W, 3) uint8 image.
            navigable: (H, W) bool, True where the pixel's ray meets open water (not land,
                not an obstacle, below the horizon).
        """
        if not np.isfinite([x, y, yaw, t]).all():
            raise InvalidInput('nan', f'camera pose ({x}, {y}, {yaw}) at t={t}')
        c = self.config
        cyaw, syaw = math.cos(yaw), math.sin(yaw)
        shore = self._march(x, y, cyaw, syaw)
        img = np.empty((c.height, c.width, 3), np.float32)
        r0 = self._r0
        np.take(self._sky_panorama, self._pano_columns(yaw), axis=1, out=img[:r0])
        wave = self._wave_field(x, y, cyaw, syaw, t)
        shading = self._wave_amp * wave
        shading += 1.0
        np.multiply(self._water_base, shading[..., None], out=img[r0:])
        if c.glare_strength > 0.0:
            self._add_glare(img, wave, yaw)
        self._draw_land(img, shore, yaw)
        self._draw_reflection(img, shore, wave)
        navigable = self._rows[:, None] > shore['v_contact'][None, :]
        self._draw_obstacles(img, navigable, shore, x, y, cyaw, syaw)
        return self._finish(img, x, y, yaw, t), navigable

    # ------------------------------------------------------------------ set-up
    def _style(self, rng):
        """Scene look drawn from the seed: sun, colours, clouds, wind."""
        self._sun_az = rng.uniform(0.0, _TWO_PI)
        self._sun_el = math.radians(rng.uniform(8.0, 40.0))
        self._wind_dir = rng.uniform(0.0, _TWO_PI)
        self._cloud_cover = rng.uniform(0.1, 0.75)
        self._haze_distance = self.config.haze_distance * rng.uniform(0.35, 1.3)

        def jitter(colour, amount):
            colour = np.asarray(colour, np.float32) + rng.normal(0.0, amount, 3)
            return np.clip(colour, 0, 255).astype(np.float32)

        self._zenith = jitter((60, 110, 195), 12)
        self._sky_horizon = jitter((195, 212, 228), 8)
        self._haze = _mix(self._sky_horizon, np.float32([170, 175, 180]), 0.35)
        lake = [(28, 62, 70), (38, 58, 44), (24, 46, 78), (44, 56, 58)]
        w = rng.dirichlet(np.ones(len(lake)))
        self._water_deep = jitter(np.tensordot(w, np.float32(lake), axes=1), 5)
        self._sun_colour = np.float32([255, 246, 228])
        self._brightness = rng.uniform(0.85, 1.1) * (1.0 - 0.25 * self._cloud_cover)

    def _build_geometry(self):
        """Per-pixel rays that meet the water plane (pose independent)."""
        c = self.config
        self._rows = np.arange(c.height, dtype=np.float32)
        a = (np.arange(c.width) - self._cx) / self._fx              # right, per column
        self._a = a
        self._v_horizon = self._cy - self._fy * self._sp / self._cp
        self._r0 = int(np.clip(math.floor(self._v_horizon) + 1, 0, c.height))  # first water row
        b = ((np.arange(self._r0, c.height) - self._cy) / self._fy)[:, None]
        tpar = c.mount_height / (self._sp + b * self._cp)            # ray length per unit b
        self._F = (tpar * (self._cp - b * self._sp)).astype(np.float32)       # (Hw, 1)
        self._L = (-tpar * a[None, :]).astype(np.float32)                    # (Hw, W)
        self._range = np.hypot(self._F, self._L).astype(np.float32)
        self._depression = np.arctan2(self._sp + b * self._cp, self._cp - b * self._sp)  # (Hw, 1)
        self._az_pix = np.arctan2(self._L, self._F).astype(np.float32)
        # Column azimuth at the horizon (level frame, CCW); indexes the sky / land panoramas.
        self._az_col = np.arctan2(-a * self._cp, 1.0)
        self._pano_width = max(64, int(round(_TWO_PI * self._fx)))

    def _build_march(self):
        """Ground line of each image column and the geometric march distances along it.

        The rays of column u meet the water plane on the straight line
        (F, L) = (-h tan(pitch), 0) + s * (1, -a_u cos(pitch)) / n_u; s is the distance along it.
        """
        c = self.config
        self._n_col = np.sqrt(1.0 + (self._a * self._cp) ** 2)
        self._dir_F = 1.0 / self._n_col
        self._dir_L = -self._a * self._cp / self._n_col
        self._origin_F = -c.mount_height * self._sp / self._cp
        b_bottom = (c.height - 1 - self._cy) / self._fy
        t_bottom = c.mount_height / (self._sp + b_bottom * self._cp)
        s_bottom = t_bottom / self._cp * self._n_col
        s0 = 0.98 * float(s_bottom.min())
        self._s = s0 * (c.max_range / s0) ** np.linspace(0.0, 1.0, c.march_samples)

    def _build_textures(self, rng):
        """Tileable textures: two wave layers (with mip pyramids) and world land fields."""
        c = self.config
        self._wave_layers = []
        for wavelength, texel, speed, spread in ((10.0, c.wave_texel * 1.7, 0.5, 0.0),
                                                 (5.0, c.wave_texel, 0.3, 0.9)):
            base = _periodic_noise(rng, (256, 256), wavelength, bandwidth=0.5,
                                   direction=self._wind_dir)
            pyramid = [base]
            for _ in range(_WAVE_LEVELS - 1):
                pyramid.append(cv2.resize(pyramid[-1], None, fx=0.5, fy=0.5,
                                          interpolation=cv2.INTER_AREA))
            heading = self._wind_dir + spread
            self._wave_layers.append((pyramid, texel, speed * math.cos(heading),
                                      speed * math.sin(heading)))
        # Land fields in world coordinates: hills, land type, beach, tree crowns.
        self._land_fields = np.dstack([_periodic_noise(rng, (128, 128), 12.0) for _ in range(3)])
        self._land_field_texel = 25.0                                      # [m]
        self._crowns = _periodic_noise(rng, (256, 256), 3.0, bandwidth=0.8)
        self._crown_texel = 1.2                                            # [m]
        # Vegetation panorama: rows = fraction of the shore height (0 top .. 1 waterline).
        rows, cols = 96, self._pano_width
        leaves = _periodic_noise(rng, (rows, cols), 6.0, bandwidth=0.9)
        trunks = _periodic_noise(rng, (rows, cols), 5.0, elongation=(12.0, 1.0))
        clumps = _periodic_noise(rng, (rows, cols), 40.0)
        frac = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
        dark, light = np.float32([28, 52, 30]), np.float32([92, 120, 58])
        tone = np.clip(0.45 + 0.18 * leaves + 0.15 * clumps - 0.25 * frac, 0.0, 1.0)
        veg = _mix(dark, light, tone[..., None])
        trunk_w = np.clip(trunks - 0.8, 0.0, 1.0)[..., None] * (frac[..., None] > 0.5)
        veg = _mix(veg, np.float32([62, 50, 38]), trunk_w)
        self._vegetation = veg.astype(np.float32)
        self._vegetation_lum = self._vegetation.mean(axis=-1)

    def _build_sky(self, rng):
        """Sky panorama over image rows 0 .. r0 and all bearings (clouds, sun glow)."""
        r0, cols = self._r0, self._pano_width
        b = (np.arange(r0) - self._cy) / self._fy
        elev = -np.arctan2(self._sp + b * self._cp, self._cp - b * self._sp)[:, None]  # (r0, 1)
        el_pos = np.maximum(elev, 0.0)
        sky = np.broadcast_to(self._sky_colour(el_pos), (r0, cols, 3)).astype(np.float32)
        if r0 > 0:
            rows = max(2 * r0, 64)
            big = _periodic_noise(rng, (rows, cols), 300.0, bandwidth=0.9, elongation=(0.3, 1.0))
            fine = _periodic_noise(rng, (rows, cols), 40.0, bandwidth=0.9, elongation=(0.5, 1.0))
            density = big[:r0] + 0.15 * fine[:r0]
            threshold = np.quantile(density, 1.0 - self._cloud_cover)
            cover = np.clip((density - threshold) / 0.6, 0.0, 1.0)
            cover *= np.clip(el_pos / 0.04, 0.0, 1.0) * 0.95         # clouds thin out in the haze
            # Thick cloud cores are darker underneath; thin edges stay bright.
            shade = np.clip(1.0 - 0.22 * np.clip(density - threshold - 0.5, 0.0, 1.5), 0.6, 1.0)
            cloud = np.float32([240, 240, 242]) * shade[..., None]
            sky = _mix(sky, cloud, cover[..., None])
            bearing = (np.arange(cols) + 0.5) / cols * _TWO_PI
            d_az = np.angle(np.exp(1j * (bearing - self._sun_az)))[None, :]
            ang = np.hypot(d_az * np.cos(elev), elev - self._sun_el)
            glow = (0.9 * np.exp(-ang / 0.05) + 0.25 * np.exp(-ang / 0.4))[..., None]
            sky = _mix(sky, self._sun_colour, np.clip(glow * (1 - 0.5 * cover[..., None]), 0, 1))
        self._sky_panorama = np.ascontiguousarray(sky, dtype=np.float32)

    def _sky_colour(self, elevation):
        """Clear-sky colour (..., 3) at elevation [rad] (>= 0): haze at the horizon to zenith."""
        return _mix(self._sky_horizon, self._zenith, (1.0 - np.exp(-elevation / 0.3))[..., None])

    def _build_water(self):
        """Base water colour (Fresnel mix of depth colour and sky, haze) and wave contrast."""
        c = self.config
        sin_d = np.sin(self._depression)
        fresnel = 0.02 + 0.98 * (1.0 - sin_d) ** 5                        # (Hw, 1)
        reflected = self._sky_colour(self._depression) * 0.92          # (Hw, 1, 3)
        base = _mix(self._water_deep, reflected, fresnel[..., None])
        haze = (1.0 - np.exp(-self._range / self._haze_distance))[..., None]
        self._water_base = _mix(base, self._haze, haze).astype(np.float32)  # (Hw, W, 3)
        self._wave_amp = (0.22 / (1.0 + self._range / 40.0)).astype(np.float32)
        # Mip level per row from the pixel's ground footprint: geometric mean of its across
        # (R / fx) and along (R^2 / (h fy)) extents, the latter being much longer.
        centre = self._range[:, self.config.width // 2]
        footprint = np.sqrt(centre / self._fx * centre ** 2 / (c.mount_height * self._fy))
        texel = self._wave_layers[0][1]
        level = np.clip(np.floor(np.log2(np.maximum(footprint / texel, 1e-6)) + 0.5),
                        0, _WAVE_LEVELS - 1).astype(int)
        textured = np.flatnonzero(self._range[:, c.width // 2] < c.max_range)
        self._bands = []
        if textured.size:
            start = int(textured[0])
            for i in range(start + 1, int(textured[-1]) + 2):
                if i > textured[-1] or level[i] != level[start]:
                    self._bands.append((start, i, int(level[start])))
                    start = i

    # ------------------------------------------------------------------ per frame
    def _pano_columns(self, yaw: float) -> np.ndarray:
        bearing = (yaw + self._az_col) % _TWO_PI
        return np.minimum((bearing / _TWO_PI * self._pano_width).astype(np.intp),
                          self._pano_width - 1)

    def _march(self, x, y, cyaw, syaw) -> dict:
        """First land along every column: contact row, land top row, range, world point."""
        c = self.config
        s = self._s[:, None]
        F = self._origin_F + s * self._dir_F[None, :]
        L = s * self._dir_L[None, :]
        land = self._raster.lookup(x + F * cyaw - L * syaw, y + F * syaw + L * cyaw)
        has = land.any(axis=0)
        k = np.argmax(land, axis=0)
        # Bracket the raster's first land sample, widened by the raster's position error,
        # then bisect with the exact is_land. Land already at the bracket start ends there.
        slack = 0.75 * c.land_raster_cell
        lo = np.maximum(self._s[np.maximum(k - 1, 0)] - slack, self._s[0])
        hi = self._s[k] + slack
        ends = self._exact_land(x, y, cyaw, syaw, np.concatenate([lo, hi]))
        lo_land, hi_land = ends[:lo.size], ends[lo.size:]
        for _ in range(c.refine_steps):
            mid = 0.5 * (lo + hi)
            hit = self._exact_land(x, y, cyaw, syaw, mid)
            hi, lo = np.where(hit, mid, hi), np.where(hit, lo, mid)
        s_c = np.where(lo_land, lo, np.where(hi_land, 0.5 * (lo + hi), self._s[k]))
        Fc, Lc = self._origin_F + s_c * self._dir_F, s_c * self._dir_L
        t_ray = s_c * self._cp / self._n_col
        v_contact = self._cy + self._fy * (c.mount_height / t_ray - self._sp) / self._cp
        v_contact = np.where(has, v_contact, self._v_horizon)
        X, Y = x + Fc * cyaw - Lc * syaw, y + Fc * syaw + Lc * cyaw
        fields = self._sample(self._land_fields, X / self._land_field_texel,
                              Y / self._land_field_texel)
        crowns = self._sample(self._crowns, X / self._crown_texel, Y / self._crown_texel)
        # Land that is thin along the ray (a spit, the flank of an islet) is lower, so that
        # islands get sloped sides instead of vertical walls.
        probes = s_c[None, :] + np.array([5.0, 15.0, 40.0])[:, None]
        pF, pL = self._origin_F + probes * self._dir_F, probes * self._dir_L
        thickness = self._raster.lookup(x + pF * cyaw - pL * syaw,
                                        y + pF * syaw + pL * cyaw).mean(axis=0)
        height = ((c.land_height + c.land_height_variation * np.tanh(fields[:, 0])
                   + 0.12 * c.land_height * crowns) * (0.3 + 0.7 * thickness))
        Z = height - c.mount_height
        zc = Fc * self._cp - Z * self._sp
        v_top = np.where(zc > 1e-3, self._cy + self._fy * (-Fc * self._sp - Z * self._cp)
                         / np.maximum(zc, 1e-3), -1.0)
        # Where the shore is seen at a grazing angle, neighbouring columns hit shore points
        # metres apart and the crown noise turns into one-column spikes; a 5-tap median
        # removes them and keeps real steps (a near headland in front of far land) sharp.
        v_top = np.where(has, v_top, self._v_horizon).astype(np.float32)
        v_top = cv2.medianBlur(v_top.reshape(1, -1), 5)[0]
        v_top = np.minimum(np.maximum(v_top, -1.0), v_contact)
        return {'has': has, 'v_contact': v_contact.astype(np.float32),
                'v_top': v_top.astype(np.float32), 'range': np.hypot(Fc, Lc),
                'fields': fields}

    def _exact_land(self, x, y, cyaw, syaw, s) -> np.ndarray:
        """world.is_land at distance s [m] (per column, tiled if longer) along each column."""
        reps = s.size // self._dir_F.size
        F = self._origin_F + s * np.tile(self._dir_F, reps)
        L = s * np.tile(self._dir_L, reps)
        return np.asarray(self.world.is_land(x + F * cyaw - L * syaw, y + F * syaw + L * cyaw),
                          bool)

    @staticmethod
    def _sample(texture, u, v) -> np.ndarray:
        """Bilinear, wrapped lookup of a tileable texture at texel coordinates (N,) -> (N, ...)."""
        mu = np.ascontiguousarray(u, np.float32).reshape(1, -1) % texture.shape[1]
        mv = np.ascontiguousarray(v, np.float32).reshape(1, -1) % texture.shape[0]
        out = cv2.remap(texture, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        return out[0]

    def _wave_field(self, x, y, cyaw, syaw, t) -> np.ndarray:
        """World-anchored, drifting wave height (Hw, W), mip-filtered by distance."""
        wave = np.zeros(self._L.shape, np.float32)
        for r_start, r_end, level in self._bands:
            F, L = self._F[r_start:r_end], self._L[r_start:r_end]
            A = F * cyaw - L * syaw
            B = F * syaw + L * cyaw
            for (pyramid, texel, vx, vy), weight in zip(self._wave_layers, (1.0, 0.7)):
                tex = pyramid[level]
                scale = 1.0 / (texel * 2 ** level)
                period = tex.shape[1] / scale
                ox = ((x - vx * t) % period) * scale
                oy = ((y - vy * t) % period) * scale
                mu = A * scale + np.float32(ox)
                mv = B * scale + np.float32(oy)
                wave[r_start:r_end] += weight * cv2.remap(tex, mu, mv, cv2.INTER_LINEAR,
                                                          borderMode=cv2.BORDER_WRAP)
        return wave

    def _add_glare(self, img, wave, yaw):
        """Sun glitter: bright wave crests around the specular direction of the sun."""
        c = self.config
        sigma_az = 0.22
        off = math.remainder(yaw - self._sun_az, _TWO_PI)
        if abs(off) > math.radians(c.hfov_deg) / 2 + 3 * sigma_az:
            return
        row_lobe = np.exp(-((self._depression[:, 0] - self._sun_el) / 0.12) ** 2)
        lit = np.flatnonzero(row_lobe > 1e-3)
        if lit.size == 0:
            return
        r1, r2 = int(lit[0]), int(lit[-1]) + 1
        d_az = self._az_pix[r1:r2] + np.float32(off)
        lobe = np.exp(-(d_az / sigma_az) ** 2) * row_lobe[r1:r2, None].astype(np.float32)
        sparkle = np.maximum(wave[r1:r2] - 0.9, 0.0)
        strength = (120.0 * c.glare_strength) * lobe * (0.25 + sparkle * sparkle * 1.5)
        img[self._r0 + r1:self._r0 + r2] += strength[..., None] * (self._sun_colour / 255.0)

    def _draw_land(self, img, shore, yaw):
        """Vegetation wall from the contact row up to the land top, hazed by distance."""
        has = shore['has']
        if not has.any():
            return
        c = self.config
        cols = np.flatnonzero(has)
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        v_con = shore['v_contact'][c0:c1]
        v_top = np.where(has[c0:c1], shore['v_top'][c0:c1], v_con + 1.0)   # no land: empty
        v0 = int(max(0, math.floor(v_top.min())))
        v1 = int(min(c.height, math.ceil(v_con.max()) + 1))
        if v1 <= v0:
            return
        rows = self._rows[v0:v1, None]
        alpha = np.minimum(np.clip(v_con + 0.5 - rows, 0, 1), np.clip(rows + 0.5 - v_top, 0, 1))
        frac = np.clip((rows - v_top) / np.maximum(v_con - v_top, 1e-3), 0.0, 1.0)
        texel = ((frac * (self._vegetation.shape[0] - 1)).astype(np.intp) * self._pano_width
                 + self._pano_columns(yaw)[c0:c1])
        veg = np.take(self._vegetation.reshape(-1, 3), texel, axis=0)
        lum = np.take(self._vegetation_lum.ravel(), texel)
        # Per column: land type (forest / meadow / rock), brightness and distance haze fold
        # into colour = veg * A + lum * B + C; rock keeps the vegetation's texture.
        fields = shore['fields'][c0:c1]
        meadow = np.clip(fields[:, 1] * 0.8, 0, 1)[:, None]
        rock = np.clip(-fields[:, 1] - 1.1, 0, 1)[:, None]
        haze = (1.0 - np.exp(-shore['range'][c0:c1] / (0.5 * self._haze_distance)))[:, None]
        lit = self._brightness * (1.0 - haze)
        A = (1.0 + meadow * np.float32([0.35, 0.2, -0.2])) * (1.0 - rock) * lit
        B = np.float32([118, 110, 98]) / 60.0 * rock * lit
        C = self._haze * haze
        colour = veg * A.astype(np.float32)
        colour += lum[..., None] * B.astype(np.float32)
        colour += C.astype(np.float32)
        # A beach or reed strip at the waterline, of varying width.
        beach = frac > 1.0 - np.clip(0.04 + 0.08 * fields[:, 2], 0.0, 0.15)
        sand = (np.float32([168, 152, 118]) * lit + C).astype(np.float32)
        colour = np.where(beach[..., None], 0.15 * colour + 0.85 * sand, colour)
        band = img[v0:v1, c0:c1]
        band += (colour - band) * alpha[..., None]

    def _draw_reflection(self, img, shore, wave):
        """Mirror image of the shore in the water just below the contact line."""
        c = self.config
        has = shore['has']
        if c.reflection_strength == 0.0 or not has.any():
            return
        cols = np.flatnonzero(has)
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        v_con = shore['v_contact'][c0:c1]
        span = np.where(has[c0:c1], v_con - shore['v_top'][c0:c1], 0.0)
        r1 = int(max(self._r0, math.floor(v_con.min())))
        r2 = int(min(c.height, math.ceil((v_con + span).max()) + 1))
        if r2 <= r1:
            return
        depth = self._rows[r1:r2, None] - v_con[None, :]
        ripple = wave[r1 - self._r0:r2 - self._r0, c0:c1]
        src_row = np.clip(np.rint(v_con[None, :] - depth), 0, c.height - 1).astype(np.intp)
        src_col = np.clip(np.arange(c0, c1)[None, :] + np.rint(1.5 * ripple).astype(np.intp),
                          0, c.width - 1)
        mirror = img[src_row, src_col] * 0.8
        fade = np.sqrt(np.clip(1.0 - depth / np.maximum(span, 1.0), 0, 1))
        weight = (c.reflection_strength * fade * ((depth > 0) & (span > 0)))[..., None]
        band = img[r1:r2, c0:c1]
        band += (mirror - band) * weight

    def _draw_obstacles(self, img, navigable, shore, x, y, cyaw, syaw):
        """Buoys and boats, far to near, hidden behind nearer land; they clear the mask."""
        c = self.config
        visible = []
        for index, ob in enumerate(self.world.obstacles):
            dx, dy = ob.x - x, ob.y - y
            F, L = dx * cyaw + dy * syaw, -dx * syaw + dy * cyaw
            dist = math.hypot(F, L)
            if F - ob.radius < 0.3 or dist - ob.radius > c.max_range:
                continue
            if abs(L) - ob.radius > F * math.tan(math.radians(c.hfov_deg) / 2) + ob.radius:
                continue
            visible.append((dist, index, ob, F, L))
        yaw = math.atan2(syaw, cyaw)
        for dist, index, ob, F, L in sorted(visible, key=lambda item: -item[0]):
            parts = (self._buoy_parts if ob.kind == 'buoy' else self._boat_parts)(ob, index, F, L,
                                                                                 yaw)
            # The face towards the camera is lit when the sun is behind the camera.
            facing = yaw + math.atan2(L, F) + math.pi
            light = (0.6 + 0.4 * max(0.0, math.cos(facing - self._sun_az))) * self._brightness
            self._paint(img, navigable, shore, parts, dist - ob.radius, light)

    def _project(self, F, L, Z):
        """Level-frame points [m] (lens at the origin) -> image (u, v) [px]."""
        zc = F * self._cp - Z * self._sp
        u = self._cx - self._fx * L / zc
        v = self._cy + self._fy * (-F * self._sp - Z * self._cp) / zc
        return u, v

    def _obstacle_rng(self, index, ob) -> np.random.Generator:
        """Per-obstacle random look (colours, heading), fixed for a seed and obstacle."""
        key = zlib.crc32(f'{self.seed}:{index}:{ob.x:.2f}:{ob.y:.2f}'.encode())
        return np.random.default_rng(key)

    def _buoy_parts(self, ob, index, F, L, yaw):
        """Silhouette polygons of a buoy: cylinder with a cone top, plus a stripe."""
        h = self.config.mount_height
        rng = self._obstacle_rng(index, ob)
        colours = [(205, 40, 30), (235, 190, 30), (240, 110, 20)]
        body = np.float32(colours[rng.integers(len(colours))])
        rho = math.hypot(F, L)
        pF, pL = -L / rho * ob.radius, F / rho * ob.radius       # lateral offset (to the left)
        nF, nL = F / rho * ob.radius, L / rho * ob.radius        # towards the far side
        shoulder = 0.7 * ob.height
        ring = [(F + pF * np.cos(q) - nF * np.sin(q), L + pL * np.cos(q) - nL * np.sin(q))
                for q in np.linspace(0, math.pi, 7)]
        bottom = [(f, l, -h) for f, l in ring]
        upper = [(f, l, shoulder - h) for f, l in ring]
        top = [(F + 0.35 * (f - F), L + 0.35 * (l - L), ob.height - h) for f, l in ring]
        stripe_lo, stripe_hi = 0.35 * ob.height - h, 0.5 * ob.height - h
        stripe = ([(f, l, stripe_lo) for f, l in ring] + [(f, l, stripe_hi) for f, l in ring])
        stripe_colour = np.float32((240, 240, 235) if rng.random() < 0.5 else (30, 30, 30))
        return [(bottom + upper + top, body, True), (stripe, stripe_colour, True)]

    def _boat_parts(self, ob, index, F, L, yaw):
        """Silhouette polygons of a moored boat: hull, boot stripe, cabin, windows."""
        h = self.config.mount_height
        rng = self._obstacle_rng(index, ob)
        heading = getattr(ob, 'yaw', None)
        heading = rng.uniform(0, _TWO_PI) if heading is None else float(heading)
        rel = heading - yaw                     # boat heading in level frame
        ch, sh = math.cos(rel), math.sin(rel)
        length = 2.0 * ob.radius
        beam = max(0.38 * length, 0.5)
        free = 0.35 * ob.height

        def box(xs, half_beam, z):
            return [(F + bx * ch - by * sh, L + bx * sh + by * ch, z - h)
                    for bx in xs for by in (-half_beam, half_beam)]

        hull_x = (-0.5 * length, -0.2 * length, 0.25 * length)
        hull = (box(hull_x, 0.42 * beam, 0.0) + box(hull_x, 0.5 * beam, free)
                + [(F + 0.5 * length * ch, L + 0.5 * length * sh, free - h),
                   (F + 0.45 * length * ch, L + 0.45 * length * sh, -h)])
        boot = box(hull_x, 0.43 * beam, 0.0) + box(hull_x, 0.45 * beam, 0.18 * free)
        cabin_x = (-0.3 * length, 0.12 * length)
        cabin = box(cabin_x, 0.36 * beam, free * 0.9) + box(cabin_x, 0.33 * beam, ob.height)
        z_lo, z_hi = free + 0.5 * (ob.height - free), free + 0.82 * (ob.height - free)
        windows = box((-0.26 * length, 0.13 * length), 0.34 * beam, z_lo) + box(
            (-0.26 * length, 0.13 * length), 0.335 * beam, z_hi)
        hull_colour = np.float32((236, 236, 232) if rng.random() < 0.7 else (150, 155, 162))
        boot_colour = np.float32([(30, 50, 110), (140, 30, 30), (30, 30, 30)][rng.integers(3)])
        return [(hull, hull_colour, False), (boot, boot_colour, False),
                (cabin, np.float32((215, 215, 212)), False),
                (windows, np.float32((45, 55, 65)), False)]

    def _paint(self, img, navigable, shore, parts, near_range, light):
        """Fill the convex hulls of projected parts; land nearer than the obstacle hides it."""
        c = self.config
        projected = []
        for points, colour, rounded in parts:
            pts = np.asarray(points, np.float64)
            if (pts[:, 0] * self._cp - pts[:, 2] * self._sp).min() < 0.05:
                return                                           # straddles the lens plane
            u, v = self._project(pts[:, 0], pts[:, 1], pts[:, 2])
            projected.append((np.stack([u, v], axis=1), colour, rounded))
        allp = np.concatenate([p for p, _, _ in projected])
        u0 = int(max(0, math.floor(allp[:, 0].min()) - 1))
        u1 = int(min(c.width, math.ceil(allp[:, 0].max()) + 2))
        v0 = int(max(0, math.floor(allp[:, 1].min()) - 1))
        v1 = int(min(c.height, math.ceil(allp[:, 1].max()) + 2))
        if u1 <= u0 or v1 <= v0:
            return
        in_front = (~shore['has'][u0:u1]) | (shore['range'][u0:u1] > near_range)
        roi = img[v0:v1, u0:u1]
        silhouette = np.zeros((v1 - v0, u1 - u0), np.uint8)
        shift = 4
        shade = light * (1.0 - 0.25 * np.linspace(0, 1, v1 - v0, dtype=np.float32))[:, None]
        columns = np.arange(u0, u1, dtype=np.float32)
        for p, colour, rounded in projected:
            cover = np.zeros_like(silhouette)
            hull = cv2.convexHull(np.rint((p - (u0, v0)) * (1 << shift)).astype(np.int32))
            cv2.fillConvexPoly(cover, hull, 255, cv2.LINE_AA, shift)
            alpha = cover.astype(np.float32)[..., None] / 255.0 * in_front[None, :, None]
            part_shade = shade
            if rounded:                                  # cylinder: darker towards its sides
                centre, half = 0.5 * (p[:, 0].min() + p[:, 0].max()), 0.5 * np.ptp(p[:, 0]) + 0.5
                across = np.clip(1.0 - ((columns - centre) / half) ** 2, 0.0, 1.0)
                part_shade = shade * (0.55 + 0.45 * np.sqrt(across))[None, :]
            roi[:] = _mix(roi, colour * part_shade[..., None], alpha)
            np.maximum(silhouette, cover, out=silhouette)
        blocked = (silhouette >= 128) & in_front[None, :]
        navigable[v0:v1, u0:u1] &= ~blocked

    def _finish(self, img, x, y, yaw, t) -> np.ndarray:
        """Exposure, optical blur, sensor noise, 8-bit quantisation."""
        c = self.config
        if c.blur_sigma > 0.0:
            size = 2 * math.ceil(1.5 * c.blur_sigma) + 1
            img = cv2.GaussianBlur(img, (size, size), c.blur_sigma)
        gain = 1.05 + 0.04 * math.sin(0.21 * t + self.seed)                # auto-exposure
        cv2.multiply(img, self._vignette, dst=img, scale=gain)
        if c.noise_std > 0.0:
            key = zlib.crc32(np.float64([x, y, yaw, t]).tobytes())
            cv2.add(img, self._noise[key % _NOISE_FRAMES], dst=img)
        np.clip(img, 0.0, 255.0, out=img)
        return img.astype(np.uint8)
