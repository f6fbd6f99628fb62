"""The compiled attentive cross-covariance against a direct formula (an exp per level, not
the ladder's repeated squaring), and the column norms."""
import numpy as np
import pytest

from asv_autonomy.mapping.fused import attentive_cross, column_square_norms


def _unit_rows(rng, n, levels):
    a = rng.random((n, levels)) + 1e-3
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _direct(x1, w1, z1, x2, w2, z2, longest, amplitude):
    d2 = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    mix = sum(np.outer(w1[:, k], w2[:, k])
              * np.exp(-0.5 * d2 / (longest / 2.0 ** k) ** 2) for k in range(w1.shape[1]))
    return amplitude * mix * (z1 @ z2.T)


@pytest.mark.parametrize('levels, n1, n2', [(1, 7, 5), (2, 33, 17), (6, 64, 257), (9, 3, 40)])
def test_attentive_cross_matches_the_direct_formula(levels, n1, n2):
    rng = np.random.default_rng(levels)
    x1, x2 = rng.uniform(-60, 60, (n1, 2)), rng.uniform(-60, 60, (n2, 2))
    w1, z1 = _unit_rows(rng, n1, levels), _unit_rows(rng, n1, levels)
    w2, z2 = _unit_rows(rng, n2, levels), _unit_rows(rng, n2, levels)
    expected = _direct(x1, w1, z1, x2, w2, z2, 40.0, 1.7)
    got = attentive_cross(x1, w1, z1, x2, w2, z2, 40.0, 1.7)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    # Strided inputs (columns of an embedding) and a reused output buffer.
    e1 = np.concatenate([x1, w1, z1], axis=1)
    out = np.full((n1, n2), np.nan)
    again = attentive_cross(e1[:, :2], e1[:, 2:2 + levels], e1[:, 2 + levels:], x2, w2, z2,
                            40.0, 1.7, out=out)
    assert again is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


def test_a_wrong_output_buffer_is_refused():
    rng = np.random.default_rng(0)
    x, w = rng.random((4, 2)), _unit_rows(rng, 4, 3)
    for out in (np.empty((4, 5)), np.empty((4, 4), np.float32), np.empty((4, 4), order='F')):
        with pytest.raises(ValueError, match='out must be C-contiguous float64'):
            attentive_cross(x, w, w, x, w, w, 1.0, 1.0, out=out)


@pytest.mark.parametrize('order', ['C', 'F'])
def test_column_square_norms(order):
    a = np.asarray(np.random.default_rng(1).normal(size=(37, 11)), order=order)
    np.testing.assert_allclose(column_square_norms(a), (a * a).sum(0), rtol=1e-13)

