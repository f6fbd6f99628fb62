"""Bag player as a launchable node (``replay.launch.xml``): what ``asv bag play`` does,
configured by parameters (``bag``, ``rate``, ``start_offset``, ``topics``, ``remap``,
``clock_rate``, ``delay``, ``wait_for_subscribers``, ``loop``); it exits when the bag ends,
which ends the replay launch (``on_exit="shutdown"``)."""
from __future__ import annotations

import time

from rclpy.node import Node

from asv_autonomy.bagio import BagError
from asv_autonomy.ros.bag_player import BagPlayer, PlayerConfig, check
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import EXIT_CONFIG, EXIT_OK, rclpy_until_signal


def main(args=None) -> int:
    stop: list = []
    with rclpy_until_signal(stop, args):
        node = Node('bag_player')
        log = node.get_logger()
        try:
            config = declare_config(node, PlayerConfig)
            info = check(config)
        except ConfigError as error:
            log.error(str(error))
            return EXIT_CONFIG
        except (BagError, ValueError) as error:
            log.error(f'bag: {error}')
            return EXIT_CONFIG
        try:
            with BagPlayer(config, info, node=node) as player:
                started = time.monotonic()
                count = player.play(lambda: bool(stop))
            wall = time.monotonic() - started
            log.info(f'played {count} messages in {wall:.2f} s'
                     + ('' if stop else f' ({info["duration_ns"] / 1e9 / wall:.1f}x real time)'
                        if wall > 0 else ''))
        finally:
            node.destroy_node()
    return EXIT_OK


if __name__ == '__main__':
    raise SystemExit(main())
