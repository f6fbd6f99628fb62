"""Kernels: positive semi-definiteness, constant variance, agreement with gpytorch's
stationary kernels, the attentive kernel's lengthscale ladder and its input normalisation."""
import math

import gpytorch
import numpy as np
import pytest
import torch

from asv_autonomy.mapping.kernels import (AttentiveKernel, StationaryKernel, make_kernel,
                                          ou_correlation)


def _points(n=120, seed=0):
    """Random points with clusters and exact duplicates (the hard case for PSD)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200.0 - 100.0
    if n >= 30:
        x[:10] = x[10:20] + 1e-3 * torch.rand(10, 2, generator=g, dtype=torch.float64)
        x[20:25] = x[25:30]
    return x


def _scrambled_attentive(seed=0):
    """An attentive kernel with large random network weights (far from its init)."""
    kernel = AttentiveKernel(lengthscale=5.0, num_lengthscales=6, hidden=16, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in kernel.parameters():
            if p.dim() > 0:
                p.copy_(3.0 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    kernel.set_input_normalization(torch.tensor([10.0, -5.0], dtype=torch.float64), 80.0)
    return kernel


@pytest.mark.parametrize('name', ['rbf', 'matern32', 'matern52', 'attentive', 'scrambled'])
def test_kernel_matrices_are_psd_with_constant_variance(name):
    kernel = _scrambled_attentive() if name == 'scrambled' else make_kernel(name, 15.0)
    x = _points()
    with torch.no_grad():
        K = kernel(x, x)
    assert torch.allclose(K, K.T, atol=1e-12)
    assert torch.linalg.eigvalsh(K).min() >= -1e-10 * K.diagonal().max()
    assert torch.allclose(K.diagonal(), kernel.diag(len(x)).expand(len(x)), rtol=1e-12)


@pytest.mark.parametrize('name, reference', [
    ('rbf', lambda: gpytorch.kernels.RBFKernel()),
    ('matern32', lambda: gpytorch.kernels.MaternKernel(nu=1.5)),
    ('matern52', lambda: gpytorch.kernels.MaternKernel(nu=2.5)),
])
def test_stationary_kernels_match_gpytorch(name, reference):
    x1, x2 = _points(40, 1), _points(30, 2)
    ours = StationaryKernel(name, lengthscale=17.0, amplitude=2.5)
    theirs = reference().double()
    theirs.lengthscale = 17.0
    with torch.no_grad():
        expected = 2.5 * theirs(x1, x2).to_dense()
        assert torch.allclose(ours(x1, x2), expected, rtol=1e-9, atol=1e-12)


def test_attentive_ladder_level_is_an_rbf_of_that_lengthscale():
    """With all attention on one level and one membership, the kernel is that RBF."""
    kernel = AttentiveKernel(lengthscale=3.0, num_lengthscales=5, hidden=8)
    assert torch.allclose(kernel.lengthscales, torch.tensor([48.0, 24.0, 12.0, 6.0, 3.0],
                                                            dtype=torch.float64))
    x1, x2 = _points(35, 3), _points(30, 4)
    for level in range(5):
        with torch.no_grad():
            for head, hot in ((kernel.lengthscale_head, level), (kernel.membership_head, 0)):
                head.weight.zero_()
                head.bias.fill_(-60.0)
                head.bias[hot] = 60.0
            K = kernel(x1, x2)
        ell = 3.0 * 2.0 ** (4 - level)
        rbf = torch.exp(-0.5 * torch.cdist(x1, x2) ** 2 / ell ** 2)
        assert torch.allclose(K, rbf, atol=1e-12), level


def test_attentive_kernel_selects_lengthscales_by_position():
    """Different attention in two regions: correlation at a fixed distance differs."""
    kernel = _scrambled_attentive(seed=5)
    x = _points(200, 6)
    with torch.no_grad():
        w, _ = kernel.attention(x)
    assert (w.argmax(dim=1) != w.argmax(dim=1)[0]).any()


def test_attentive_input_normalisation_keeps_the_function():
    kernel = _scrambled_attentive(seed=2)
    x1, x2 = _points(30, 7), _points(20, 8)
    with torch.no_grad():
        before = kernel(x1, x2)
        kernel.set_input_normalization(torch.tensor([-40.0, 7.0], dtype=torch.float64), 333.0)
        after = kernel(x1, x2)
    assert torch.allclose(before, after, rtol=1e-10, atol=1e-13)


def test_attentive_fast_path_equals_autograd_path():
    kernel = _scrambled_attentive(seed=3)
    x1, x2 = _points(50, 9), _points(40, 10)
    with torch.no_grad():
        fast = kernel(x1, x2)
        w_fast, z_fast = kernel.attention(x1)
    differentiable = kernel(x1, x2)
    w, z = kernel.attention(x1)
    assert differentiable.requires_grad and w.requires_grad
    assert torch.allclose(fast, differentiable.detach(), rtol=1e-12, atol=1e-15)
    assert torch.allclose(w_fast, w.detach(), rtol=1e-13, atol=1e-15)
    assert torch.allclose(z_fast, z.detach(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize('name', ['rbf', 'matern32', 'matern52', 'attentive'])
def test_between_into_a_buffer_equals_the_allocating_path(name):
    kernel = _scrambled_attentive(seed=5) if name == 'attentive' else make_kernel(name, 15.0)
    x1, x2 = _points(30, 11), _points(20, 12)
    with torch.no_grad():
        e1, e2 = kernel.embed(x1), kernel.embed(x2)
        expected = kernel.between(e1, e2)
        out = torch.full((30, 20), math.nan, dtype=torch.float64)
        got = kernel.between(e1, e2, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_ladder_mix_value_and_gradients_match_autograd():
    from asv_autonomy.mapping.kernels import ladder_mix
    generator = torch.Generator().manual_seed(0)
    w1 = torch.rand(3, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    w2 = torch.rand(3, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    levels = torch.rand(3, 5, 4, dtype=torch.float64, generator=generator)
    expected = (w1[:, :, None] * w2[:, None, :] * levels).sum(0)
    torch.testing.assert_close(ladder_mix(w1, w2, levels), expected, rtol=1e-12, atol=1e-14)
    assert torch.autograd.gradcheck(lambda a, b: ladder_mix(a, b, levels), (w1, w2))


def test_attentive_kernel_gradients_reach_every_parameter():
    kernel = _scrambled_attentive(seed=4)
    x = _points(30, 11)
    kernel(x, x).sum().backward()
    for name, p in kernel.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_ou_correlation():
    dt = torch.tensor([0.0, -10.0, 30.0], dtype=torch.float64)
    assert torch.equal(ou_correlation(dt, 0.0), torch.ones(3, dtype=torch.float64))
    expected = torch.tensor([1.0, math.exp(-0.5), math.exp(-1.5)], dtype=torch.float64)
    assert torch.allclose(ou_correlation(dt, 20.0), expected)


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match='unknown kernel'):
        make_kernel('linear', 1.0)


def test_attentive_kernel_is_psd_on_many_random_inputs():
    rng = np.random.default_rng(0)
    for seed in range(3):
        kernel = _scrambled_attentive(seed=10 + seed)
        x = torch.from_numpy(rng.uniform(-300, 300, size=(150, 2)))
        with torch.no_grad():
            K = kernel(x, x)
        assert torch.linalg.eigvalsh(K).min() >= -1e-10
