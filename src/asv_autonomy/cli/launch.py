"""``asv launch``: run a project launch file without the ROS 2 command line tools.

Usage::

    asv launch [--print] PROFILE|FILE [NAME:=VALUE ...]

(options go before the profile or after the last NAME:=VALUE, as with ``ros2 launch``).

``PROFILE`` is a file name in the package's ``launch/`` folder without ``.launch.xml``
(``asv launch sim``); ``FILE`` is a path to any ``.launch.xml``. ``NAME:=VALUE`` set the
launch file's arguments. The pseudo-argument ``network:=true`` is consumed here: without it
every node gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` so DDS never leaves the machine;
with it the variable is left as the calling environment has it (the boat talking to a
shore station needs that).

The :class:`LaunchSupervisor` does what the launch service of ``ros2 launch`` does for
nodes: one process (and process group) per node, output prefixed with ``[name]``,
``respawn``, ``on_exit="shutdown"``, and on Ctrl-C / SIGTERM: SIGINT to every node, SIGTERM
after :data:`SIGINT_TIMEOUT`, SIGKILL after :data:`SIGTERM_TIMEOUT` more (the whole process
group each time, so grandchildren go too), all within 5 s.

Output (as ``ros2 launch``): ``output="screen"`` prints stdout and stderr; ``"log"`` (the
default) writes both to ``<ROS log dir>/<launch run>/launch.log`` and still prints stderr,
where ROS loggers write; ``"both"`` does both.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping, Sequence

from asv_autonomy.cli.common import with_fastdds_profile
from asv_autonomy.cli.launch_xml import (
    NodeProcess, load_launch, parse_bool, parse_cli_arguments, resolve_launch_file)

SIGINT_TIMEOUT = 3.0   # [s] from SIGINT to SIGTERM
SIGTERM_TIMEOUT = 1.0  # [s] from SIGTERM to SIGKILL (3 + 1 s: all gone well within 5 s)
_KILL_GRACE = 0.4      # [s] after SIGKILL before giving up on a process group
_REPORT_WAIT = 0.5     # [s] an exit report waits this long for the node's last output
_POLL = 0.05           # [s] supervision loop period
START_FAILED = 127     # exit code recorded for a node whose process could not be started


def ros_log_dir(environ: Mapping[str, str]) -> Path:
    """ROS_LOG_DIR, else $ROS_HOME/log, else ~/.ros/log (rcl_logging's rule)."""
    if environ.get('ROS_LOG_DIR'):
        return Path(environ['ROS_LOG_DIR']).expanduser()
    if environ.get('ROS_HOME'):
        return Path(environ['ROS_HOME']).expanduser() / 'log'
    return Path.home() / '.ros' / 'log'


def node_labels(nodes: Sequence[NodeProcess]) -> list[str]:
    """Output prefix / result key per node: its name (else executable), ``-N`` when repeated."""
    bases = [node.name or node.executable for node in nodes]
    counts, seen = Counter(bases), Counter()
    labels = []
    for base in bases:
        seen[base] += 1
        labels.append(f'{base}-{seen[base]}' if counts[base] > 1 else base)
    return labels


@dataclass
class _Slot:
    """One node and its current process."""

    label: str
    node: NodeProcess
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    exit_code: int | None = None
    respawn_at: float | None = None


class LaunchSupervisor:
    """Runs nodes as supervised child processes.

    Typical use from Python (what ``asv launch`` does, minus the signal handling)::

        plan = load_launch(resolve_launch_file('sim'), {'use_sim_time': 'true'})
        with LaunchSupervisor(plan.nodes) as launch:
            launch.wait(timeout=60.0)       # True once the launch ended by itself
        launch.exit_codes                   # {'sim': 0, 'localization': -2, ...}

    Args:
        nodes: what to run (``LaunchPlan.nodes``); every executable is resolved here, so a
            missing one raises LaunchError before anything starts.
        network: False sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST for every node.
        screen: where prefixed output goes (default sys.stdout).
        log_dir: folder of ``launch.log`` for ``output="log"``/``"both"`` nodes (default
            a fresh folder in the ROS log directory, created only when needed).
        environ: base environment of the nodes (default os.environ).
        sigint_timeout, sigterm_timeout: [s] shutdown escalation delays.
    """

    def __init__(self, nodes: Sequence[NodeProcess], *, network: bool = False,
                 screen: IO[str] | None = None, log_dir: Path | None = None,
                 environ: Mapping[str, str] | None = None,
                 sigint_timeout: float = SIGINT_TIMEOUT,
                 sigterm_timeout: float = SIGTERM_TIMEOUT):
        environ = dict(os.environ if environ is None else environ)
        base_env = with_fastdds_profile(dict(environ, PYTHONUNBUFFERED='1'))
        if not network:
            base_env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        self._slots = [_Slot(label, node, node.command(), {**base_env, **dict(node.env)})
                       for label, node in zip(node_labels(nodes), nodes)]
        self._screen = screen if screen is not None else sys.stdout
        self._log_path: Path | None = None
        if any(node.output in ('log', 'both') for node in nodes):
            self._log_path = (log_dir if log_dir is not None else ros_log_dir(environ) / (
                f'{datetime.datetime.now():%Y-%m-%d-%H-%M-%S-%f}'
                f'-{socket.gethostname()}-{os.getpid()}')) / 'launch.log'
        self._log: IO[str] | None = None
        self._sigint_timeout = sigint_timeout
        self._sigterm_timeout = sigterm_timeout
        self._write_lock = threading.Lock()
        self._groups: dict[int, str] = {}  # process group id -> label, every one ever started
        self._reports: list[tuple[float, list[threading.Thread], str]] = []
        self._failures: dict[str, int] = {}
        self._stop_reason: str | None = None  # set from signal handlers: no locks involved
        self._started = False
        self._done = threading.Event()
        self._monitor = threading.Thread(target=self._supervise, name='asv-launch', daemon=True)

    # --- public API -------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return [slot.label for slot in self._slots]

    @property
    def log_file(self) -> Path | None:
        """launch.log of output="log"/"both" nodes (None when no node uses it)."""
        return self._log_path

    @property
    def exit_codes(self) -> dict[str, int | None]:
        """Node label -> exit code of its last run (None while running or never run).

        Negative codes are signals (-2: stopped by SIGINT); START_FAILED: could not start.
        """
        return {slot.label: slot.exit_code for slot in self._slots}

    @property
    def failures(self) -> dict[str, int]:
        """Nodes that exited with a non-zero code on their own (not during shutdown)."""
        return dict(self._failures)

    @property
    def pids(self) -> dict[str, int]:
        """Label -> pid of the nodes running now."""
        return {slot.label: slot.process.pid for slot in self._slots if slot.process}

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def start(self) -> None:
        """Start every node, in declaration order, and supervise them in a thread."""
        if self._started:
            raise RuntimeError('LaunchSupervisor.start() called twice')
        self._started = True
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self._log_path, 'a', encoding='utf-8')
            self._say(f'log file: {self._log_path}')
        for slot in self._slots:
            self._spawn(slot)
        self._monitor.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the launch has ended (True) or ``timeout`` [s] passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        # Short waits keep the main thread responsive to signal handlers.
        while not self._done.wait(_POLL if deadline is None else
                                  max(0.0, min(_POLL, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def request_shutdown(self, reason: str = 'shutdown requested') -> None:
        """Ask for shutdown and return at once (safe to call from a signal handler)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def shutdown(self, reason: str = 'shutdown requested') -> dict[str, int | None]:
        """Stop every node (SIGINT, SIGTERM, SIGKILL; < 5 s) and return ``exit_codes``."""
        if self._started:
            self.request_shutdown(reason)
            self.wait()
        return self.exit_codes

    def run(self) -> dict[str, int | None]:
        """start(), wait until the launch ends or SIGINT/SIGTERM arrives, shut down.

        Signal handlers are installed only when called from the main thread.
        """
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            self.start()
            self.wait()
        finally:
            try:
                self.shutdown()
            finally:
                for signum, handler in handlers.items():
                    signal.signal(signum, handler)
        return self.exit_codes

    def __enter__(self) -> LaunchSupervisor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # --- supervision ------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        self.request_shutdown(f'received {signal.Signals(signum).name}')

    def _spawn(self, slot: _Slot) -> None:
        slot.respawn_at = None
        try:
            process = subprocess.Popen(
                slot.command, env=slot.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as error:
            slot.exit_code = self._failures[slot.label] = START_FAILED
            self._say(f'{slot.label} could not be started: {error}')
            return
        slot.process = process
        self._groups[process.pid] = slot.label
        slot.readers = [threading.Thread(target=self._pump, args=(slot, stream, is_err),
                                         daemon=True)
                        for stream, is_err in ((process.stdout, False), (process.stderr, True))]
        for reader in slot.readers:
            reader.start()
        self._say(f'{slot.label} started (pid {process.pid})')

    def _pump(self, slot: _Slot, stream: IO[bytes], is_stderr: bool) -> None:
        """Copy one output stream of a node, line by line, prefixed with its label."""
        to_screen = slot.node.output in ('screen', 'both') or is_stderr
        to_log = slot.node.output in ('log', 'both')
        with stream:
            for raw in iter(stream.readline, b''):
                line = f'[{slot.label}] {raw.decode(errors="replace").rstrip()}\n'
                self._write(line, to_screen, to_log)

    def _write(self, line: str, to_screen: bool = True, to_log: bool = True) -> None:
        with self._write_lock:
            if to_screen:
                self._screen.write(line)
                self._screen.flush()
            if to_log and self._log is not None:
                self._log.write(line)
                self._log.flush()

    def _say(self, message: str) -> None:
        self._write(f'[launch] {message}\n')

    def _supervise(self) -> None:
        try:
            self._run_until_stop_requested()
            self._stop_all()
        finally:
            with self._write_lock:
                if self._log is not None:
                    self._log.close()
                    self._log = None
            self._done.set()

    def _poll(self, stopping: bool) -> float:
        now = time.monotonic()
        for slot in self._slots:
            self._reap(slot, now, stopping)
        self._flush_reports(now)
        self._prune_groups()
        return now

    def _run_until_stop_requested(self) -> None:
        while True:
            now = self._poll(stopping=False)
            if self._stop_reason is None and not any(
                    slot.process or slot.respawn_at is not None for slot in self._slots):
                self._stop_reason = 'all nodes exited'
            if self._stop_reason is not None:
                return
            for slot in self._slots:
                if slot.respawn_at is not None and now >= slot.respawn_at:
                    self._spawn(slot)
            time.sleep(_POLL)

    def _stop_all(self) -> None:
        """SIGINT every process group, SIGTERM and SIGKILL what is left, until none is."""
        self._say(f'shutting down: {self._stop_reason}')
        started = time.monotonic()
        escalation = [(self._sigint_timeout, signal.SIGTERM),
                      (self._sigint_timeout + self._sigterm_timeout, signal.SIGKILL)]
        give_up = self._sigint_timeout + self._sigterm_timeout + _KILL_GRACE
        last = signal.SIGINT
        self._signal_groups(last)
        while True:
            time.sleep(_POLL)
            elapsed = self._poll(stopping=True) - started
            live = self._live_groups()
            if not live:
                break
            names = ', '.join(sorted(set(live.values())))
            if escalation and elapsed >= escalation[0][0]:
                signum = escalation.pop(0)[1]
                self._say(f'{names} still running after {last.name}; sending {signum.name}')
                self._signal_groups(signum)
                last = signum
            elif elapsed >= give_up:
                self._say(f'processes of {names} still present after SIGKILL')
                break
        # A node can exit between the last reap and the liveness check (it is then a
        # zombie, which no longer counts as live): collect its exit code too.
        for slot in self._slots:
            if slot.process is not None:
                try:
                    slot.process.wait(timeout=_KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
        self._poll(stopping=True)
        self._flush_reports(float('inf'))

    def _reap(self, slot: _Slot, now: float, stopping: bool) -> None:
        if slot.process is None or slot.process.poll() is None:
            return
        code, slot.process = slot.process.returncode, None
        slot.exit_code = code
        message = f'{slot.label} exited with code {code}'
        if not stopping:
            if code != 0:
                self._failures[slot.label] = code
            if slot.node.on_exit == 'shutdown':
                self.request_shutdown(f'{slot.label} exited (on_exit="shutdown")')
            elif slot.node.respawn:
                slot.respawn_at = now + slot.node.respawn_delay
                message += f'; respawning in {slot.node.respawn_delay:g} s'
        # Printed once the node's last lines are out (or after _REPORT_WAIT).
        self._reports.append((now + _REPORT_WAIT, slot.readers, message))

    def _flush_reports(self, now: float) -> None:
        pending = []
        for deadline, readers, message in self._reports:
            if now >= deadline or not any(reader.is_alive() for reader in readers):
                self._say(message)
            else:
                pending.append((deadline, readers, message))
        self._reports = pending

    def _prune_groups(self) -> None:
        """Forget process groups that no longer exist, so their ids are never signalled
        after the kernel reuses them (a group id stays reserved while any member exists)."""
        for pgid in list(self._groups):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                del self._groups[pgid]
            except PermissionError:
                pass

    def _live_groups(self) -> dict[int, str]:
        """Process groups of our nodes that still have a process that is not a zombie.

        Zombies do not count: an orphaned grandchild's zombie lingers where PID 1 does not
        reap (containers), and it cannot be killed anyway.
        """
        self._prune_groups()
        running = _running_process_groups()
        return {pgid: label for pgid, label in self._groups.items()
                if running is None or pgid in running}

    def _signal_groups(self, signum: int) -> None:
        for pgid in self._live_groups():
            try:
                os.killpg(pgid, signum)
            except ProcessLookupError:
                pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies (even by SIGKILL), so
    nodes in their own sessions are never orphaned. Linux only; elsewhere a no-op."""
    if sys.platform.startswith('linux'):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _running_process_groups() -> set[int] | None:
    """Ids of process groups with a live (non-zombie) process; None without Linux /proc."""
    try:
        entries = os.listdir('/proc')
    except OSError:
        return None
    groups = set()
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat', 'rb') as stat:
                    fields = stat.read().rsplit(b')', 1)[1].split()
            except OSError:
                continue
            if fields[0] != b'Z':
                groups.add(int(fields[2]))
    return groups


# --- the `asv launch` command ------------------------------------------------------------

def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        'launch', help='run a launch profile or .launch.xml file (like ros2 launch)',
        description=__doc__.split('\n\n')[0],
        epilog='network:=true lets DDS discovery use the network (default: this machine '
               'only). Ctrl-C stops every node within 5 s.')
    parser.add_argument('launch', metavar='PROFILE|FILE',
                        help='profile name (sim, gazebo, boat, replay, ...) or launch file path')
    parser.add_argument('arguments', nargs='*', metavar='NAME:=VALUE',
                        help='launch arguments; network:=true is handled by asv itself')
    parser.add_argument('--print', dest='dry_run', action='store_true',
                        help='print the command line of every node and exit')
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    arguments = parse_cli_arguments(args.arguments)
    network = parse_bool(arguments.pop('network', 'false'), 'network')
    plan = load_launch(resolve_launch_file(args.launch), arguments)
    if args.dry_run:
        for name, value in plan.arguments.items():
            print(f'# {name}:={value}')
        for label, node in zip(node_labels(plan.nodes), plan.nodes):
            env = [f'{key}={value}' for key, value in node.env]
            print(f'[{label}] {shlex.join(env + node.command())}')
        return 0
    supervisor = LaunchSupervisor(plan.nodes, network=network)
    supervisor.run()
    return 1 if supervisor.failures else 0
