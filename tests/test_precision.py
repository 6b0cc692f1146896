"""float32 agrees with float64 within float32's tolerance: forward, loss, gradients of parameters
and input, and a few optimizer steps, on networks that use every layer and activation.
The float32 copy comes from net.astype, so both start from the same (rounded) parameters."""
import numpy as np
import pytest

import nativebp as nb
from conftest import data, randomize_biases, rel_err

# float32 has eps 6e-8; a few layers of rounding, relative to each tensor's largest element
FWD_TOL, GRAD_TOL = 2e-5, 2e-4


def networks():
    return {
        "activations": [nb.Dense(6, 8), nb.ReLU(), nb.Dense(8, 8), nb.LeakyReLU(0.1), nb.Dense(8, 8), nb.ELU(),
                        nb.Dense(8, 8), nb.SELU(), nb.Dense(8, 8), nb.GELU(), nb.Dense(8, 8), nb.Sigmoid(),
                        nb.Dense(8, 8), nb.Tanh(), nb.Dense(8, 8), nb.Softplus(), nb.Dense(8, 8), nb.SiLU(),
                        nb.Dense(8, 8), nb.Softmax(), nb.Dense(8, 3)],
        "norms_residual_dropout": [nb.Dense(6, 8), nb.BatchNorm1d(8), nb.Tanh(),
                                   nb.Residual([nb.Dense(8, 8), nb.LayerNorm(8), nb.GELU(), nb.Dense(8, 8)]),
                                   nb.Dropout(0.25), nb.Dense(8, 8, bias=False),
                                   nb.LayerNorm(8, elementwise_affine=False), nb.Dense(8, 3)],
    }


LOSSES = [("mse", "normal"), ("huber", "normal"), ("mae", "normal"), ("binary_cross_entropy", "binary"),
          ("cross_entropy", "labels"), ("cross_entropy", "probs")]


def target(kind, n, k):
    rng = np.random.default_rng(3)
    if kind == "labels":
        return rng.integers(0, k, n)
    if kind == "probs":
        return rng.dirichlet(np.ones(k), n)
    if kind == "binary":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.standard_normal((n, k))


def pair(name):
    net64 = nb.Sequential(networks()[name], dtype="float64", seed=0)
    randomize_biases(net64, 1)
    net32 = net64.astype("float32")
    # compare on the same parameters: float64 takes the float32-rounded ones
    for a, b in zip(net64.parameters(), net32.parameters()):
        a.value[...] = b.value
    return net64, net32


@pytest.mark.parametrize("loss,kind", LOSSES, ids=[f"{l}-{k}" for l, k in LOSSES])
@pytest.mark.parametrize("name", list(networks()))
def test_float32_matches_float64(name, loss, kind):
    net64, net32 = pair(name)
    assert net32.dtype == "float32" and net32.parameters()[0].value.dtype == np.float32
    X = data(0, 16, 6).astype(np.float32).astype(np.float64)  # the same inputs in both
    y = target(kind, 16, 3)
    assert rel_err(net32.forward(X), net64.forward(X)) <= FWD_TOL
    assert net32.loss(X, y, loss=loss) == pytest.approx(net64.loss(X, y, loss=loss), rel=FWD_TOL)
    grads = []
    for net in (net64, net32):  # the same seed gives both the same dropout mask
        net.zero_grad()
        value, dx = net.loss_and_grad(X, y, loss=loss, return_input_grad=True)
        grads.append((value, dx, [p.grad.copy() for p in net.parameters()]))
    (v64, dx64, g64), (v32, dx32, g32) = grads
    assert v32 == pytest.approx(v64, rel=FWD_TOL)
    assert rel_err(dx32, dx64) <= GRAD_TOL
    # a tensor whose true gradient is ~0 (a bias just before BatchNorm) is judged on the network's scale
    scale = max(np.abs(g).max() for g in g64)
    for p, a, b in zip(net64.parameters(), g32, g64):
        assert np.abs(a - b).max() <= GRAD_TOL * max(np.abs(b).max(), 1e-2 * scale), p.name


@pytest.mark.parametrize("kind,hyper", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=1e-3)),
                                        ("RMSprop", dict(lr=1e-3, centered=True)), ("Adagrad", dict(lr=0.05))],
                         ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_float32_training_steps_match_float64(kind, hyper):
    net64, net32 = pair("activations")
    opts = [getattr(nb.optim, kind)(net, **hyper) for net in (net64, net32)]
    X, y = data(0, 16, 6), target("labels", 16, 3)
    for _ in range(5):
        for net, opt in zip((net64, net32), opts):
            net.train_step(X, y, loss="cross_entropy", optimizer=opt)
    for a, b in zip(net32.parameters(), net64.parameters()):
        assert rel_err(a.value, b.value) <= GRAD_TOL, a.name


def test_gradcheck_of_a_float32_network_runs_in_float64():
    net32 = nb.Sequential([nb.Dense(3, 4), nb.GELU(), nb.Dense(4, 2)], dtype="float32", seed=0)
    r = nb.gradcheck(net32, data(0, 5, 3), data(1, 5, 2))
    assert r.max_error <= 1e-6
