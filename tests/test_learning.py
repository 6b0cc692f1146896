"""End to end: plain gradient descent through loss_and_grad and manual updates of the parameter
views fits XOR and a small regression; parameters() are live views of the engine's weights."""
import numpy as np
import pytest

import nativebp as nb
from conftest import data

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


def descend(net, X, y, lr, steps, loss="mse"):
    """Plain SGD by hand: p.value -= lr * p.grad on the numpy views."""
    params = net.parameters()
    for _ in range(steps):
        net.zero_grad()
        net.loss_and_grad(X, y, loss=loss)
        for p in params:
            p.value -= lr * p.grad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_manual_sgd_fits_xor(dtype):
    net = nb.Sequential([nb.Dense(2, 8), nb.Tanh(), nb.Dense(8, 1)], dtype=dtype, seed=0)
    first = net.loss(XOR_X, XOR_Y)
    descend(net, XOR_X, XOR_Y, lr=0.2, steps=800)
    assert net.loss(XOR_X, XOR_Y) < first / 100
    np.testing.assert_array_equal(net.forward(XOR_X) > 0.5, XOR_Y > 0.5)


def test_manual_sgd_fits_xor_as_classification():
    net = nb.Sequential([nb.Dense(2, 8), nb.Tanh(), nb.Dense(8, 2)], dtype="float64", seed=1)
    labels = XOR_Y.ravel().astype(int)
    first = net.loss(XOR_X, labels, loss="cross_entropy")
    descend(net, XOR_X, labels, lr=0.5, steps=800, loss="cross_entropy")
    assert net.loss(XOR_X, labels, loss="cross_entropy") < first / 100
    np.testing.assert_array_equal(net.forward(XOR_X).argmax(1), labels)


def test_manual_sgd_fits_a_small_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (64, 1))
    y = np.sin(1.5 * X) + 0.3 * X
    net = nb.Sequential([nb.Dense(1, 16), nb.Tanh(), nb.Dense(16, 1)], dtype="float64", seed=0)
    first = net.loss(X, y)
    descend(net, X, y, lr=0.1, steps=3000)
    assert net.loss(X, y) < first / 100


def test_train_step_with_sgd_equals_the_manual_update():
    net = nb.Sequential([nb.Dense(3, 4), nb.ReLU(), nb.Dense(4, 2)], dtype="float64", seed=0)
    X, y = data(0, 5, 3), data(1, 5, 2)
    twin = net.copy()
    descend(twin, X, y, lr=0.05, steps=1)
    net.train_step(X, y, optimizer=nb.optim.SGD(net, lr=0.05))
    for a, b in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-14, atol=1e-16)


def test_parameters_are_views():
    net = nb.Sequential([nb.Dense(3, 4), nb.Tanh(), nb.Dense(4, 2)], dtype="float64", seed=0)
    X = data(0, 5, 3)
    w0, b0, w1, b1 = net.parameters()
    before = net.forward(X)
    b1.value[...] = [1.0, -2.0]  # writing the view changes the network's output
    np.testing.assert_allclose(net.forward(X), before + [1.0, -2.0], rtol=1e-14)
    w1.value[...] = 0
    np.testing.assert_array_equal(net.forward(X), np.tile([1.0, -2.0], (5, 1)))
    w0.value *= 2  # in-place arithmetic too
    np.testing.assert_array_equal(net.parameters()[0].value, w0.value)
    assert np.shares_memory(net.parameters()[0].value, w0.value)
    # gradients land in the same grad views that were handed out earlier
    net.zero_grad()
    net.loss_and_grad(X, data(1, 5, 2))
    assert np.abs(b1.grad).max() > 0 and b1.grad is net.parameters()[3].grad
    net.zero_grad()
    assert not b1.grad.any()


def test_loss_and_grad_accumulates_like_torch():
    net = nb.Sequential([nb.Dense(3, 2)], dtype="float64", seed=0)
    X, y = data(0, 4, 3), data(1, 4, 2)
    net.zero_grad()
    net.loss_and_grad(X, y)
    once = [p.grad.copy() for p in net.parameters()]
    net.loss_and_grad(X, y)
    for p, g in zip(net.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-15)
