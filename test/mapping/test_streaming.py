"""Mapper state containers: the adaptation-set buffer, the inducing set's O(M) add /
remove bookkeeping, and the re-prior of a belief under a new kernel."""
import math

import numpy as np
import torch

from asv_autonomy.mapping import GPMapper, GPMapperConfig
from asv_autonomy.mapping.kernels import StationaryKernel
from asv_autonomy.mapping.streaming import (InducingSet, SampleBuffer, blas_threads, reprior,
                                            torch_threads)


def smooth_field(xy):
    return np.sin(xy[:, 0] / 25.0) + 0.5 * np.cos(xy[:, 1] / 35.0)


def test_sample_buffer_keeps_the_window_and_a_uniform_reservoir():
    buffer = SampleBuffer(window=50, reservoir=200, seed=3)
    rows = np.column_stack([np.arange(250.0), np.zeros(250), np.arange(250.0), np.ones(250)])
    buffer.add(rows)
    assert buffer.complete and len(buffer.data()) == 250      # nothing dropped yet
    np.testing.assert_array_equal(np.sort(buffer.data()[:, 0]), np.arange(250.0))
    for start in range(250, 20_000, 250):
        buffer.add(rows + [start, 0, start, 0])
    data = buffer.data()
    assert not buffer.complete and len(data) == 250
    np.testing.assert_array_equal(data[-50:, 0], np.arange(19_950.0, 20_000.0))  # window
    old = data[:-50, 0]        # uniform over the 19,950 samples that left the window
    assert abs(old.mean() - 19_950 / 2) < 3 * 19_950 / math.sqrt(12 * 200)
    assert len(np.unique(old)) == 200


def test_inducing_set_add_and_remove_keep_the_inverse_and_the_belief():
    kernel = StationaryKernel('rbf', lengthscale=15.0)
    rng = np.random.default_rng(1)
    points = torch.from_numpy(rng.uniform(0, 100, size=(60, 2)))
    jitter = 1e-6
    with torch.no_grad():
        full = kernel(points, points) + jitter * torch.eye(60, dtype=torch.float64)
    members = InducingSet(capacity=41, embed_dim=2)
    order = []
    for i in rng.permutation(60):
        if members.n == 40:
            j = int(rng.integers(40))
            members.remove(j)
            order[j] = order[-1]
            order.pop()
        k = full[order, i]
        a = torch.linalg.solve(full[order][:, order], k) if order else k
        members.append(points[i], points[i], k, float(full[i, i]), a, float(full[i, i] - a @ k))
        order.append(int(i))
    K = full[order][:, order]
    torch.testing.assert_close(members.K, K)
    torch.testing.assert_close(members.Kinv @ K, torch.eye(40, dtype=torch.float64),
                               atol=1e-7, rtol=0)
    torch.testing.assert_close(members.Z, points[order])
    # Without data, each appended value's belief is its exact conditional prior: P = K.
    torch.testing.assert_close(members.P, K, atol=1e-9, rtol=0)


def test_reprior_keeps_the_evidence_under_a_new_kernel():
    """With the data at the inducing points the evidence is kernel-free: re-expressing
    the belief under new hyperparameters equals fusing the data under them."""
    rng = np.random.default_rng(10)
    x = rng.uniform(0, 60, size=(25, 2))
    y = smooth_field(x) + 0.1 * rng.normal(size=25)
    config = GPMapperConfig(kernel='rbf', inducing_spacing=1e-3, signal_std=1.0,
                            lengthscale=15.0, jitter=1e-9, adapt_every=0)
    old = GPMapper(config)
    old.update(x, 0.0, y)
    new = GPMapper(config)
    with torch.no_grad():
        new.kernel.log_lengthscale.fill_(math.log(30.0))
        new.kernel.log_amplitude.fill_(math.log(1.7))
    new.update(x, 0.0, y)
    # Same inducing points in the same order in both.
    zero = torch.zeros_like(old._m)
    m, P = reprior(old._m, old._P, zero, old._K, new._K)
    torch.testing.assert_close(m, new._m, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(P, new._P, rtol=1e-6, atol=1e-7)
    # Dropping a prior mean mu keeps the site: same P, mean P (P^-1 m - K^-1 mu).
    mu = torch.from_numpy(rng.normal(size=len(zero)))
    m, P = reprior(old._m, old._P, mu, old._K, old._K)
    torch.testing.assert_close(P, old._P, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(m, old._m - old._P @ torch.linalg.solve(old._K, mu),
                               rtol=1e-6, atol=1e-7)


def test_thread_limits_of_torch_and_the_blas_pools_are_restored():
    from threadpoolctl import threadpool_info
    import scipy.linalg.blas  # noqa: F401 - its BLAS must be loaded to be counted

    def blas_pools():
        return [pool['num_threads'] for pool in threadpool_info() if pool['user_api'] == 'blas']

    torch_before, blas_before = torch.get_num_threads(), blas_pools()
    with torch_threads(1), blas_threads(1):
        assert torch.get_num_threads() == 1 and set(blas_pools()) == {1}
    assert torch.get_num_threads() == torch_before and blas_pools() == blas_before
    with torch_threads(0), blas_threads(0):   # 0: leave everything as it is
        assert torch.get_num_threads() == torch_before and blas_pools() == blas_before
