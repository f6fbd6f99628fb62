"""Run folders of recorded missions (``asv sim run``, ``asv replay``): ``runs/<UTC>/`` with
the bag the recorder writes while a launch runs, and ``runs/latest`` pointing at the newest."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from asv_autonomy.cli.common import CliError
from asv_autonomy.cli.launch import LaunchSupervisor

# [s] for the recorder to discover the topics before the launch starts publishing.
RECORDER_WARMUP_S = 2.0
RECORDER_STOP_TIMEOUT_S = 20.0


def new_run_dir(out: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    run_dir = out / stamp
    suffix = 1
    while run_dir.exists():
        run_dir = out / f'{stamp}-{suffix}'
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir


def point_latest(out: Path, run_dir: Path) -> None:
    latest = out / 'latest'
    tmp = out / '.latest.tmp'
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)


def _start_recorder(bag_dir: Path, exclude: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    command = [sys.executable, '-m', 'asv_autonomy.cli.main', 'bag', 'record', '-a', '-o',
               str(bag_dir)] + (['--exclude', exclude] if exclude else [])
    return subprocess.Popen(command, env=env, start_new_session=True)


def _stop_recorder(recorder: subprocess.Popen) -> int:
    if recorder.poll() is None:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(RECORDER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(recorder.pid, signal.SIGKILL)
            recorder.wait()
    return recorder.returncode


def run_recorded(supervisor: LaunchSupervisor, bag_dir: Path,
                 exclude: str = '') -> tuple[dict, float]:
    """Run a launch while recording every topic (but ``exclude``, a regex) into ``bag_dir``.

    Returns:
        (exit code per node including 'bag_recorder', wall seconds the launch ran).
    """
    recorder = _start_recorder(bag_dir, exclude)
    try:
        time.sleep(RECORDER_WARMUP_S)
        if recorder.poll() is not None:
            raise CliError(f'the bag recorder exited with code {recorder.returncode}')
        start = time.monotonic()
        nodes = supervisor.run()
        wall = time.monotonic() - start
    finally:
        recorder_code = _stop_recorder(recorder)
    nodes['bag_recorder'] = recorder_code
    return nodes, wall
