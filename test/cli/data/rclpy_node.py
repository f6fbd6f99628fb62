#!/usr/bin/env python3
"""A real rclpy node for the `asv launch` tests: prints how rcl read its --ros-args, exits.

Prints one JSON line: fully qualified node name, a remapped topic name, and every parameter
with its value and type (arrays as 'TYPE[]').
"""
import json

import rclpy
from rclpy.node import Node
from std_msgs.msg import Empty


def describe(value):
    if isinstance(value, (str, bool, int, float)):
        return [value, type(value).__name__]
    items = list(value)
    return [items, f'{type(items[0]).__name__}[]']


def main():
    rclpy.init()
    node = Node('unnamed', automatically_declare_parameters_from_overrides=True)
    publisher = node.create_publisher(Empty, 'chatter', 1)
    names = node.list_parameters([], 0).names
    print(json.dumps({
        'name': node.get_fully_qualified_name(),
        'topic': publisher.topic_name,
        'parameters': {name: describe(node.get_parameter(name).value) for name in names},
    }), flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
