"""asv_autonomy: autonomy stack for an autonomous surface vehicle.

Cores (``mapping``, ``anomaly``, ``planning``, ``perception``, ``sim``, ``localization``,
``drivers``) are plain numpy/torch; only ``ros`` imports rclpy and message types.
"""
__version__ = '0.1.0'
