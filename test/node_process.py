"""Stopping a node process started by a test (shared by the ROS node tests)."""
import signal
import subprocess


def stop(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 15.0) -> str:
    """Send ``sig`` (Ctrl-C by default: the node's clean shutdown) unless the process has
    exited, wait up to ``timeout`` s (then kill it) and return its combined output."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output
