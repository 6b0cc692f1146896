"""The engine's float32 GEMM (nativebp._core.sgemm) against numpy in float64, over the shapes its
code paths split on: narrow outputs (n <= 4), one or two rows, small unpacked products, large
packed ones split into pool tasks, every transpose combination, accumulate and bias."""
import numpy as np
import pytest

import nativebp as nb
from nativebp import _core

SHAPES = [  # (m, n, k): which path each exercises
    (1, 1, 1), (1, 256, 784), (2, 70, 33),           # one or two rows (inference of a sample)
    (100, 2, 64), (64, 1, 100), (7, 3, 5), (33, 4, 17),  # narrow outputs
    (100, 64, 10), (32, 64, 64), (13, 37, 29),        # small: A unpacked
    (100, 64, 2), (37, 70, 12), (9, 5, 1), (6000, 100, 3),  # short k: op(B) in registers, rows split
    (128, 256, 300), (300, 200, 130), (257, 129, 515),  # packed, ragged edges, several k-blocks
]


def _reference(A, B, ta, tb, C=None, bias=None):
    out = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B).astype(np.float64)
    if C is not None:
        out += C
    if bias is not None:
        out += bias
    return out


def _operands(rng, m, n, k, ta, tb):
    A = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    B = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return A, B


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_sgemm_matches_float64_numpy_for_every_transpose_and_path(m, n, k, ta, tb):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    A, B = _operands(rng, m, n, k, ta, tb)
    got = _core.sgemm(A, B, ta, tb)
    np.testing.assert_allclose(got, _reference(A, B, ta, tb), rtol=0, atol=2e-5 * np.sqrt(k) * 4)


@pytest.mark.parametrize("m,n,k", [(100, 2, 64), (50, 3, 20), (32, 64, 64), (257, 129, 515), (1, 256, 784),
                                   (100, 70, 2), (40, 33, 11)])
def test_sgemm_accumulates_into_C_and_adds_the_bias_row(m, n, k):
    rng = np.random.default_rng(1)
    for ta, tb in [(False, False), (True, False), (False, True)]:
        A, B = _operands(rng, m, n, k, ta, tb)
        C0 = rng.standard_normal((m, n), dtype=np.float32)
        bias = rng.standard_normal(n, dtype=np.float32)
        got = _core.sgemm(A, B, ta, tb, C=C0.copy(), accumulate=True, bias=bias)
        np.testing.assert_allclose(got, _reference(A, B, ta, tb, C0, bias), rtol=0, atol=1e-4 * np.sqrt(k) * 4)
        fresh = _core.sgemm(A, B, ta, tb, bias=bias)
        np.testing.assert_allclose(fresh, _reference(A, B, ta, tb, None, bias), rtol=0, atol=1e-4 * np.sqrt(k) * 4)


def test_sgemm_overwrites_the_given_C_when_not_accumulating():
    rng = np.random.default_rng(2)
    for m, n, k in [(9, 33, 7), (5, 3, 40), (65, 47, 300)]:
        A, B = _operands(rng, m, n, k, False, False)
        C = np.full((m, n), 7.0, np.float32)
        out = _core.sgemm(A, B, C=C, accumulate=False)
        assert out is C or np.shares_memory(out, C)
        np.testing.assert_allclose(C, _reference(A, B, False, False), rtol=0, atol=1e-4 * np.sqrt(k) * 4)


def test_sgemm_result_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    before = nb.get_num_threads()
    for m, n, k in [(300, 520, 700), (9000, 96, 5)]:  # packed; short k, rows split
        A, B = _operands(rng, m, n, k, False, True)
        try:
            nb.set_num_threads(1)
            one = _core.sgemm(A, B, False, True)
            nb.set_num_threads(2)
            two = _core.sgemm(A, B, False, True)
        finally:
            nb.set_num_threads(before)
        assert np.array_equal(one, two)


def test_sgemm_rejects_mismatched_inner_dimensions():
    with pytest.raises(ValueError, match="inner dimensions"):
        _core.sgemm(np.zeros((3, 4), np.float32), np.zeros((5, 2), np.float32))
