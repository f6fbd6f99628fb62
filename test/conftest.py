"""Shared fixtures: real-data location and ROS isolation."""
import os
import random
import socket
from pathlib import Path

import pytest

# As the nodes and the asv command do (asv_autonomy/ros/__init__.py): busy-waiting OpenMP
# threads make torch ops hundreds of times slower while another process uses the CPU.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'


def in_private_netns() -> bool:
    """True when the only network interface is loopback (tools/isolated, `make test`)."""
    try:
        return [name for _, name in socket.if_nameindex()] == ['lo']
    except OSError:
        return False


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real recordings); skips the test when this clone does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent (only the project checkout has it)')
    return SHARED_DATA


@pytest.fixture
def ros_env(monkeypatch) -> dict:
    """Environment for tests that start ROS 2 processes or nodes.

    Skips unless the test session runs inside a private network namespace (`make test`
    does that), so that DDS discovery can never leave the machine. Each test gets its own
    ROS_DOMAIN_ID so concurrent tests do not see each other.
    """
    if not in_private_netns():
        pytest.skip('ROS tests run only inside a private network namespace: use `make test` '
                    '(or tools/isolated .venv/bin/python -m pytest)')
    domain = str(random.randint(1, 100))
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return dict(os.environ)


@pytest.fixture
def one_torch_thread():
    """Tiny torch problems: one thread is as fast, and far faster on a busy 2-core machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
