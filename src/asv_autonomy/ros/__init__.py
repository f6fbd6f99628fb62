"""ROS 2 nodes: the only place that imports rclpy or message types."""
import os

# Nodes, benchmarks and the simulator share a few cores. OpenMP's default busy-waiting
# threads (torch's CPU kernels) then starve the other processes, and small tensor ops get
# hundreds of times slower while another process runs; passive waiting avoids it. Set
# before torch loads its OpenMP runtime; a user's own setting wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
# torch.compile in the node's own process: a pool of compile workers outlives the compile
# and makes the node slow to stop (and share its process group's SIGINT).
os.environ.setdefault('TORCHINDUCTOR_COMPILE_THREADS', '1')
