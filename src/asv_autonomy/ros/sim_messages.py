"""The messages of the built-in simulator, built from its steps: what ``sim_node``
publishes and what ``asv sim faults`` writes into its bags, so both carry the same topics,
rates, frames and fault labels."""
from __future__ import annotations


from asv_autonomy.ros import conversions as cv

CLOCK = '/clock'
GPS, IMU, DEPTH, TEMPERATURE = ('sensors/gps/fix', 'sensors/imu/data', 'sensors/sonar/depth',
                                'sensors/water/temperature')
IMAGE, CAMERA_INFO = 'sensors/camera/image_raw', 'sensors/camera/camera_info'
TRUTH_ODOMETRY, TRUTH_MASK = 'sim/ground_truth/odometry', 'sim/ground_truth/navigable_mask'
FAULTS = 'sim/faults'


def truth_field_topic(name: str) -> str:
    return f'sim/ground_truth/{name}'


class SimMessages:
    """Turns ``Simulator`` steps into (topic, message) pairs at the node's rates.

    Args:
        sim: the simulator (camera frames and truth fields are rendered from it).
        config: the node's ``SimNodeConfig`` (frames, truth and fault publication rates).
        camera: render camera frames when due (off for datasets that do not need them).
    """

    def __init__(self, sim, config, camera: bool = True):
        self.sim = sim
        self.config = config
        self.camera = camera
        self._next_truth = self._next_temperature = self._next_faults = sim.time
        self._faults_were_active = False

    def static(self) -> list:
        """What is published once at the start (the fixed bathymetry)."""
        return [(truth_field_topic('bathymetry'), self.field('bathymetry', self.sim.time))]

    def step(self, step) -> list:
        """Messages due after ``step`` (a ``SimStep``), in publication order."""
        cfg, t = self.config, step.time
        out = [(CLOCK, cv.to_clock(t))]
        if step.imu is not None:
            out.append((IMU, cv.to_imu(step.imu, cfg.imu_frame)))
        if step.gnss is not None:
            out.append((GPS, cv.to_navsatfix(step.gnss, cfg.gps_frame)))
        if step.depth is not None:
            sonar = self.sim.config.sonar
            out.append((DEPTH, cv.to_range(step.depth, cfg.sonar_frame, sonar.min_range,
                                           sonar.max_range)))
        if step.temperature is not None:
            out.append((TEMPERATURE, cv.to_temperature(step.temperature, cfg.base_frame)))
        if step.camera_due and self.camera:
            out.extend(self.camera_frame(t))
        if t >= self._next_truth:
            self._next_truth = t + 1.0 / cfg.ground_truth_rate
            out.append((TRUTH_ODOMETRY, cv.to_odometry(step.odometry, cfg.map_frame,
                                                       cfg.base_frame)))
        if t >= self._next_temperature:
            self._next_temperature = t + cfg.temperature_truth_period
            out.append((truth_field_topic('temperature'), self.field('temperature', t)))
        if (step.active_faults or self._faults_were_active) and t >= self._next_faults:
            self._next_faults = t + cfg.fault_period
            out.append((FAULTS, self.faults(step.active_faults, t)))
            self._faults_were_active = bool(step.active_faults)
        return out

    def camera_frame(self, t: float) -> list:
        cfg = self.config
        rgb, navigable = self.sim.render_camera()
        fx, fy, cx, cy = self.sim.camera_intrinsics()
        height, width = navigable.shape
        return [(IMAGE, cv.to_image(rgb, t, cfg.camera_frame, 'rgb8')),
                (CAMERA_INFO, cv.to_camera_info(width, height, fx, fy, cx, cy, t,
                                                cfg.camera_frame)),
                (TRUTH_MASK, cv.to_image(navigable.astype('uint8') * 255, t, cfg.camera_frame,
                                         'mono8'))]

    def field(self, name: str, t: float):
        x, y, value = self.sim.ground_truth_field(name)
        return cv.to_pointcloud2({'x': x.ravel(), 'y': y.ravel(), 'value': value.ravel()}, t,
                                 self.config.map_frame)

    @staticmethod
    def faults(faults, t: float):
        """``sim/faults``: one status per active fault (channel, family, onset, severity);
        an empty array when the last one ended."""
        statuses = [cv.diagnostic_status(
            f'sim/faults/{fault.channel}', cv.ERROR if 'failure' in fault.kind else cv.WARN,
            f'{fault.kind} active since {fault.onset:.1f} s',
            hardware_id=fault.channel,
            values={'fault': fault.kind, 'onset': fault.onset,
                    'duration': -1.0 if fault.duration is None else fault.duration,
                    **{key: value if isinstance(value, (bool, int, float, str)) else str(value)
                       for key, value in fault.params.items()}})
            for fault in faults]
        return cv.diagnostic_array(statuses, t)


