"""The `asv` command: what the ROS 2 CLI would do, for machines that only have PyPI wheels.

Each subcommand lives in its own module exposing ``register(subparsers)``; the parser it
adds sets ``func(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from asv_autonomy.cli.common import CliError

SUBCOMMANDS = ('launch', 'bag', 'sim', 'replay', 'report', 'bench', 'train', 'anomaly')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='asv', description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in SUBCOMMANDS:
        importlib.import_module(f'asv_autonomy.cli.{name}').register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as error:
        print(f'asv: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
