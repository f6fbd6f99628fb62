#!/usr/bin/env python3
"""Stand-in for a ROS 2 node executable in the `asv launch` tests (no ROS needed).

Prints its argv and a few environment variables as one JSON line, then 'ready', then does
what its options (those before --ros-args) say. SIGINT makes it print 'got SIGINT' and exit 0
unless --stubborn, which ignores SIGINT and SIGTERM.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'PYTHONUNBUFFERED', 'FAKE_ENV', 'FAKE_SCOPED')


def on_sigint(signum, frame):
    print('got SIGINT', flush=True)
    sys.exit(0)


def main():
    argv = sys.argv[1:]
    own = argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv
    parser = argparse.ArgumentParser()
    parser.add_argument('--exit', type=int, help='exit with this code after --after seconds')
    parser.add_argument('--after', type=float, default=0.0)
    parser.add_argument('--stubborn', action='store_true', help='ignore SIGINT and SIGTERM')
    parser.add_argument('--grandchild', action='store_true', help='start a stubborn child')
    parser.add_argument('--pid-dir', help='create a file named after the pid here')
    parser.add_argument('--count-file', help='append the start time here')
    parser.add_argument('--stderr', help='print this line to stderr')
    opts, _ = parser.parse_known_args(own)
    if opts.stubborn:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, on_sigint)
    if opts.pid_dir:
        Path(opts.pid_dir, str(os.getpid())).touch()
    if opts.count_file:
        with open(opts.count_file, 'a') as stream:
            stream.write(f'{time.monotonic()}\n')
    if opts.grandchild:
        subprocess.Popen([sys.executable, __file__, '--stubborn', '--pid-dir', opts.pid_dir])
    print(json.dumps({'argv': argv, 'env': {name: os.environ.get(name) for name in ENV}}))
    if opts.stderr:
        print(opts.stderr, file=sys.stderr)
    print('ready', flush=True)
    if opts.exit is not None:
        time.sleep(opts.after)
        sys.exit(opts.exit)
    while True:
        time.sleep(0.05)


if __name__ == '__main__':
    main()
