"""The one `main` of every node: init, build, spin, clean exit.

A node module ends with::

    def main(args=None):
        return run_node(MyNode, args)
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from asv_autonomy.ros.params import ConfigError, unused_overrides

EXIT_OK = 0
EXIT_CONFIG = 2


def set_torch_threads(count: int) -> None:
    """Give this node's torch ``count`` intra-op threads (0: leave torch's default, one per
    core). Nodes share the cores: a node's own setting keeps their pools from competing."""
    if count:
        import torch   # only the nodes that run models pay for the import
        torch.set_num_threads(count)


def run_node(node_factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Run one node until Ctrl-C, SIGTERM or shutdown.

    Args:
        node_factory: builds the node (usually the Node subclass itself) on the default
            context; it reads its parameters with `declare_config`. A node with an
            ``rclpy.task.Future`` attribute ``done`` is spun until that future completes.
        args: command line (``--ros-args ...``), ``None`` for ``sys.argv``.

    Returns:
        Exit code: 0 after a clean shutdown, 2 when a parameter (or the params file) is bad;
        that error is logged as one line, without a traceback.
    """
    logger = rclpy.logging.get_logger(getattr(node_factory, '__name__', 'node'))
    try:
        rclpy.init(args=None if args is None else list(args))
    except _rclpy.RCLError as err:  # e.g. unreadable --params-file
        logger.error(f'cannot start: {err}')
        return EXIT_CONFIG
    node = None
    try:
        node = node_factory()
        for name in unused_overrides(node):
            node.get_logger().warning(
                f'parameter {name!r} was given but this node has no such parameter (typo?)')
        # A node that ends by itself (the simulator at its duration) exposes a Future `done`.
        done = getattr(node, 'done', None)
        if done is None:
            rclpy.spin(node)
        else:
            rclpy.spin_until_future_complete(node, done)
    except ConfigError as err:
        logger.error(str(err))
        return EXIT_CONFIG
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # A SIGTERM can shut the context down while the executor builds its wait set:
        # that is a normal shutdown, not a crash.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def rclpy_until_signal(stop: list, args: Sequence[str] | None = None):
    """rclpy initialised for this process (``args``: ``--ros-args ...``, None for sys.argv);
    SIGINT/SIGTERM/SIGHUP only append to ``stop``, so tools that must finish their work
    (close a bag) decide when to leave."""
    previous = {sig: signal.signal(sig, lambda *_: stop.append(True)) for sig in STOP_SIGNALS}
    rclpy.init(args=None if args is None else list(args),
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield
    finally:
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
