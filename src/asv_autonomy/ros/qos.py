"""QoS profiles of the topic contract (DESIGN.md §2), defined once for every node."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# Best effort subscribers match both reliable and best-effort sensor publishers.
SENSOR = qos_profile_sensor_data
# Sensor inputs of nodes that work in bursts (a GP update or adaptation, a map publication)
# while the streams keep coming (odometry at 100 msg/s wall at 5x real time, on a loaded
# 2-core computer a burst can take seconds): a queue deep enough that a burst does not
# silently drop the poses the readings are placed with.
SENSOR_BUFFERED = QoSProfile(depth=1000, history=SENSOR.history,
                             reliability=SENSOR.reliability, durability=SENSOR.durability)
# Sources we own publish sensors reliably: best-effort drops large messages (camera images)
# under load, which a recorder then misses; reliable publishers still match best-effort
# subscribers.
SENSOR_SOURCE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE,
                           history=HistoryPolicy.KEEP_LAST)
# Commands (thrust, goals) are reliable and volatile: a late joiner must not act on old ones.
COMMAND = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
# Maps, plans and the e-stop are latched: a late joiner gets the last one.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)
