"""A float32 Dense followed by a ReLU runs fused (the ReLU in the product's store, its backward
folded into the next Dense's dX product). LeakyReLU(0) is the same function but never fused, so
networks that differ only in that must compute exactly the same outputs and gradients."""
import numpy as np
import pytest

import nativebp as nb

ARCHS = {
    "dense-relu-dense": lambda r: [nb.Dense(9, 40), r(), nb.Dense(40, 3)],
    "two-fused-pairs": lambda r: [nb.Dense(9, 64), r(), nb.Dense(64, 33), r(), nb.Dense(33, 3)],
    "relu-last": lambda r: [nb.Dense(9, 40), r(), nb.Dense(40, 3), r()],
    "relu-then-dropout": lambda r: [nb.Dense(9, 40), r(), nb.Dropout(0.3), nb.Dense(40, 3)],  # ReLU backward unfused
    "relu-first": lambda r: [r(), nb.Dense(9, 40), r(), nb.Dense(40, 3)],
    "in-a-residual": lambda r: [nb.Dense(9, 16), nb.Residual([nb.Dense(16, 16), r(), nb.Dense(16, 16)]), r(),
                                nb.Dense(16, 3)],
    "large-packed": lambda r: [nb.Dense(300, 700), r(), nb.Dense(700, 500), r(), nb.Dense(500, 3)],
    # a 1- or 2-output Dense after a ReLU: weight gradient and dX in one pass (whole and partial blocks)
    "two-outputs": lambda r: [nb.Dense(10, 64), r(), nb.Dense(64, 2)],
    "one-output": lambda r: [nb.Dense(9, 70), r(), nb.Dense(70, 1)],
    "five-inputs": lambda r: [nb.Dense(9, 5), r(), nb.Dense(5, 2)],
    "relu-on-two-outputs": lambda r: [nb.Dense(10, 64), r(), nb.Dense(64, 2), r()],  # ReLU in a 2-column store
}


def _pair(arch, seed=0):
    fused = nb.Sequential(ARCHS[arch](nb.ReLU), seed=seed)
    plain = nb.Sequential(ARCHS[arch](lambda: nb.LeakyReLU(0.0)), seed=seed)
    for a, b in zip(fused.parameters(), plain.parameters()):
        b.value[...] = a.value
    return fused, plain


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("rows", [1, 7, 128])
def test_fused_relu_matches_the_unfused_computation_exactly(arch, rows):
    fused, plain = _pair(arch)
    rng = np.random.default_rng(rows)
    X = rng.standard_normal((rows, fused.in_features), dtype=np.float32)
    y = rng.integers(0, fused.out_features, rows) if fused.out_features > 1 else \
        rng.standard_normal((rows, 1), dtype=np.float32)
    loss = "cross_entropy" if fused.out_features > 1 else "mse"
    assert np.array_equal(fused.forward(X), plain.forward(X))
    lf, dxf = fused.loss_and_grad(X, y, loss=loss, return_input_grad=True)
    lp, dxp = plain.loss_and_grad(X, y, loss=loss, return_input_grad=True)
    assert lf == lp
    assert np.array_equal(dxf, dxp)
    for a, b in zip(fused.parameters(), plain.parameters()):
        assert np.array_equal(a.grad, b.grad), a.name


def test_fused_relu_training_follows_the_unfused_trajectory():
    fused, plain = _pair("two-fused-pairs", seed=3)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 9), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    of, op = nb.optim.Adam(fused, lr=1e-2), nb.optim.Adam(plain, lr=1e-2)
    for _ in range(10):
        assert fused.train_step(X, y, loss="cross_entropy", optimizer=of) == \
            plain.train_step(X, y, loss="cross_entropy", optimizer=op)
    for a, b in zip(fused.parameters(), plain.parameters()):
        assert np.array_equal(a.value, b.value)


# A float32 Dense after a Tanh multiplies its dX product by (1 - y^2) in the store and skips the
# Tanh's own backward; float64 never fuses. The two must agree to float32 rounding.
TANH_ARCHS = {
    "dense-tanh-dense": lambda: [nb.Dense(9, 40), nb.Tanh(), nb.Dense(40, 3)],
    "deep-tanh": lambda: [nb.Dense(9, 64)] + [l for _ in range(3) for l in (nb.Tanh(), nb.Dense(64, 64))] +
                         [nb.Tanh(), nb.Dense(64, 1)],
    "tanh-first": lambda: [nb.Tanh(), nb.Dense(9, 40), nb.Tanh(), nb.Dense(40, 3)],
    "tanh-last": lambda: [nb.Dense(9, 40), nb.Tanh(), nb.Dense(40, 3), nb.Tanh()],
    "narrow-output": lambda: [nb.Dense(9, 5), nb.Tanh(), nb.Dense(5, 2)],
    "narrow-hidden": lambda: [nb.Dense(9, 3), nb.Tanh(), nb.Dense(3, 4)],  # dX with 3 columns: scalar store
}


@pytest.mark.parametrize("arch", list(TANH_ARCHS))
@pytest.mark.parametrize("rows", [1, 7, 128])
def test_fused_tanh_backward_matches_float64(arch, rows):
    f32 = nb.Sequential(TANH_ARCHS[arch](), dtype="float32", seed=1)
    f64 = nb.Sequential(TANH_ARCHS[arch](), dtype="float64", seed=1)
    for a, b in zip(f32.parameters(), f64.parameters()):
        b.value[...] = a.value
    rng = np.random.default_rng(rows)
    X = rng.standard_normal((rows, f32.in_features), dtype=np.float32)
    y = rng.standard_normal((rows, f32.out_features), dtype=np.float32)
    _, dx32 = f32.loss_and_grad(X, y, loss="mse", return_input_grad=True)
    _, dx64 = f64.loss_and_grad(X.astype(np.float64), y.astype(np.float64), loss="mse", return_input_grad=True)
    scale = max(np.abs(dx64).max(), 1e-3)
    np.testing.assert_allclose(dx32, dx64, rtol=0, atol=1e-4 * scale)
    for a, b in zip(f32.parameters(), f64.parameters()):
        np.testing.assert_allclose(a.grad, b.grad, rtol=0, atol=1e-4 * max(np.abs(b.grad).max(), 1e-3), err_msg=a.name)


# A train step lets every layer store its gradients instead of zeroing them and adding; a layer
# that cannot (BatchNorm1d) makes the step zero them first. Either way the step's gradients are
# the ones loss_and_grad computes on zeroed gradients, and loss_and_grad still adds.
@pytest.mark.parametrize("layers", [
    lambda: [nb.Dense(6, 16), nb.Tanh(), nb.Dense(16, 16), nb.ReLU(), nb.Dense(16, 2)],
    lambda: [nb.Dense(6, 16), nb.Residual([nb.Dense(16, 16), nb.Tanh()]), nb.Dense(16, 2)],
    lambda: [nb.Dense(6, 16), nb.BatchNorm1d(16), nb.ReLU(), nb.Dense(16, 2)],
], ids=["dense", "residual", "batchnorm"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_step_gradients_equal_loss_and_grad_on_zeroed_gradients(layers, dtype):
    a, b = nb.Sequential(layers(), dtype=dtype, seed=2), nb.Sequential(layers(), dtype=dtype, seed=2)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 6)).astype(dtype)
    y = rng.standard_normal((20, 2)).astype(dtype)
    for p in a.parameters():
        p.grad[...] = 7.0  # stale gradients a step must not add to
    a.train_step(X, y, loss="mse", optimizer=nb.optim.SGD(a, lr=0.0))
    b.zero_grad()
    b.loss_and_grad(X, y, loss="mse")
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.array_equal(p.grad, q.grad), p.name
    b.loss_and_grad(X, y, loss="mse")  # accumulates: twice the gradient
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(q.grad, 2 * p.grad, rtol=1e-6, atol=1e-7)
