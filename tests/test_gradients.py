"""Analytic gradients of every layer, activation and loss, for parameters and inputs, against the
engine's 4-point central differences in float64 (nb.gradcheck), to a relative error <= 1e-6.

Kinks (ReLU and LeakyReLU at 0, MAE at d = 0, Huber's second derivative at |d| = delta, Softplus's
switch to the linear branch at beta x = threshold): a finite difference that straddles one measures
the average of two one-sided slopes, not the derivative. Random inputs land within the stencil's
reach (2h = 2e-4) of a kink with probability ~1e-4 per element, and the seeds are fixed, so these
tests are deterministic; where a kink matters the test also asserts the margin, so a change of seed
can never turn a kink into a spurious failure. test_gradcheck_flags_a_kink shows what happens on one.
"""
import numpy as np
import pytest

import nativebp as nb
from conftest import data, randomize_biases

ACTIVATIONS = {
    "identity": nb.Identity(), "relu": nb.ReLU(), "leaky_relu": nb.LeakyReLU(), "leaky_relu_0.3": nb.LeakyReLU(0.3),
    "elu": nb.ELU(), "elu_0.5": nb.ELU(0.5), "selu": nb.SELU(), "gelu": nb.GELU(), "sigmoid": nb.Sigmoid(),
    "tanh": nb.Tanh(), "softplus": nb.Softplus(), "softplus_beta2_th1": nb.Softplus(beta=2.0, threshold=1.0),
    "silu": nb.SiLU(), "softmax": nb.Softmax(),
}
# (batch, in, hidden, out): batch 1 and widths of 1 in every position
SHAPES = [(1, 3, 4, 2), (5, 1, 3, 1), (4, 3, 1, 2), (1, 1, 1, 1), (7, 5, 6, 3)]
MARGIN = 1e-3  # >> 2h |w| for the weights and inputs used here


def kinks(act):
    """Pre-activation values where the activation is not smooth."""
    if isinstance(act, (nb.ReLU, nb.LeakyReLU)):
        return [0.0]
    if isinstance(act, nb.Softplus):
        return [act.threshold / act.beta]
    return []


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}_in{}_h{}_out{}".format(*s))
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_grad_matches_finite_differences(name, shape, gradcheck_ok):
    n, k_in, k_h, k_out = shape
    act = ACTIVATIONS[name]
    net = nb.Sequential([nb.Dense(k_in, k_h), act, nb.Dense(k_h, k_out)], dtype="float64", seed=3)
    randomize_biases(net, 4)
    X, y = data(1, n, k_in), data(2, n, k_out)
    w, b = net.parameters()[0].value, net.parameters()[1].value
    pre = X @ w + b
    for kink in kinks(act):
        assert np.abs(pre - kink).min() > MARGIN, "the data put a pre-activation on a kink: change the seed"
    if name == "softplus_beta2_th1" and n * k_h > 4:  # this case is meant to exercise both branches
        assert (act.beta * pre > act.threshold).any() and (act.beta * pre < act.threshold).any()
    gradcheck_ok(net, X, y)


# ------------------------------------------------------------------------------------ losses
def _targets(kind, n, k, seed):
    rng = np.random.default_rng(seed)
    if kind == "labels":
        return rng.integers(0, k, n)
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, n)]
    if kind == "probs":
        p = rng.uniform(0.1, 1, (n, k))
        return p / p.sum(1, keepdims=True)
    if kind == "binary":
        return rng.integers(0, 2, (n, k)).astype(float)
    if kind == "unit":
        return rng.uniform(0, 1, (n, k))
    return rng.standard_normal((n, k))


LOSS_CASES = [  # (loss, delta, target kind)
    ("mse", 1.0, "normal"), ("mae", 1.0, "normal"), ("huber", 1.0, "normal"), ("huber", 0.5, "normal"),
    ("huber", 2.0, "normal"), ("binary_cross_entropy", 1.0, "binary"), ("binary_cross_entropy", 1.0, "unit"),
    ("cross_entropy", 1.0, "labels"), ("cross_entropy", 1.0, "onehot"), ("cross_entropy", 1.0, "probs"),
]


# (n, k): batch of one, several outputs, one output (softmax over one output is constant: not for cross_entropy)
LOSS_PARAMS = [pytest.param(l, d, t, n, k, id=f"{l}_{d}_{t}-n{n}_k{k}") for l, d, t in LOSS_CASES
               for n, k in [(1, 2), (6, 3), (9, 1)] if not (l == "cross_entropy" and k == 1)]


@pytest.mark.parametrize("loss,delta,target,n,k", LOSS_PARAMS)
def test_loss_grad_matches_finite_differences(loss, delta, target, n, k, gradcheck_ok):
    net = nb.Sequential([nb.Dense(3, 4), nb.Tanh(), nb.Dense(4, k)], dtype="float64", seed=5)
    randomize_biases(net, 6)
    X, y = data(7, n, 3), _targets(target, n, k, 8)
    if loss in ("mae", "huber"):
        d = np.abs(net.forward(X) - y)
        kink = delta if loss == "huber" else 0.0
        assert np.abs(d - kink).min() > MARGIN, "the data put a residual on a kink: change the seed"
    gradcheck_ok(net, X, y, loss=loss, delta=delta)


def test_huber_cases_cover_both_branches():
    """The Huber gradient checks above are only meaningful if residuals fall on both sides of delta."""
    net = nb.Sequential([nb.Dense(3, 4), nb.Tanh(), nb.Dense(4, 3)], dtype="float64", seed=5)
    randomize_biases(net, 6)
    d = np.abs(net.forward(data(7, 6, 3)) - _targets("normal", 6, 3, 8))
    for delta in (0.5, 1.0, 2.0):
        assert (d < delta).any() and (d > delta).any()


# ------------------------------------------------------------------------------------ layers
def _layer_cases():
    D, R = nb.Dense, nb.Residual
    return {
        "dense_no_bias": ([D(3, 4, bias=False), nb.Tanh(), D(4, 2, bias=False)], 3, 5),
        "dense_1x1": ([D(1, 1)], 1, 1),
        "dense_mixed_bias": ([D(3, 5, bias=False), nb.SiLU(), D(5, 2)], 3, 4),
        "residual": ([D(3, 4), R([D(4, 4), nb.Tanh(), D(4, 4)]), D(4, 2)], 3, 5),
        "residual_width1": ([R([D(1, 1), nb.Tanh()])], 1, 3),
        "residual_in_residual": ([D(3, 4), R([D(4, 4), nb.ELU(), R([D(4, 4), nb.Sigmoid(), D(4, 4)])]), D(4, 2)], 3, 4),
        "residual_of_sequential": ([D(3, 4), R(nb.Sequential([D(4, 4), nb.GELU(), D(4, 4)])), D(4, 2)], 3, 4),
        "residual_of_activation_only": ([D(3, 4), R([nb.Tanh()]), D(4, 2)], 3, 4),
        "residual_chain": ([D(3, 4), R([D(4, 4), nb.Tanh()]), R([D(4, 4), nb.SiLU()]), D(4, 1)], 3, 1),
        "dropout": ([D(3, 6), nb.Dropout(0.5), nb.Tanh(), D(6, 2)], 8, 5),
        "dropout_in_residual": ([D(3, 4), R([nb.Dropout(0.3), D(4, 4), nb.Tanh()]), D(4, 2)], 8, 5),
        "batchnorm": ([D(3, 4), nb.BatchNorm1d(4), nb.Tanh(), D(4, 2)], 6, 5),
        "batchnorm_no_affine": ([D(3, 4), nb.BatchNorm1d(4, affine=False), nb.Tanh(), D(4, 2)], 6, 5),
        "batchnorm_batch2": ([D(3, 4), nb.BatchNorm1d(4), nb.Tanh(), D(4, 2)], 2, 5),
        "batchnorm_width1": ([D(3, 1), nb.BatchNorm1d(1, eps=1e-3), nb.Tanh(), D(1, 2)], 5, 5),
        "batchnorm_first": ([nb.BatchNorm1d(3, momentum=0.5), D(3, 2)], 4, 5),
        "layernorm": ([D(3, 5), nb.LayerNorm(5), nb.Tanh(), D(5, 2)], 4, 5),
        "layernorm_no_affine": ([D(3, 5), nb.LayerNorm(5, elementwise_affine=False), nb.Tanh(), D(5, 2)], 4, 5),
        "layernorm_batch1": ([D(3, 5), nb.LayerNorm(5), nb.Tanh(), D(5, 2)], 1, 5),
        "layernorm_width2": ([D(3, 2), nb.LayerNorm(2, eps=1e-2), D(2, 2)], 3, 5),
        "layernorm_first": ([nb.LayerNorm(3), D(3, 2)], 3, 5),
        "deep_tanh_10": ([D(3, 5)] + [l for _ in range(9) for l in (nb.Tanh(), D(5, 5))] + [D(5, 2)], 4, 5),
        "deep_mixed_9": ([D(4, 6), nb.ELU(), D(6, 6), nb.GELU(), D(6, 3), nb.SiLU(), D(3, 1), nb.Sigmoid(), D(1, 4),
                          nb.Softplus(), D(4, 6), nb.SELU(), D(6, 5), nb.Tanh(), D(5, 5), nb.Softmax(), D(5, 2),
                          nb.LeakyReLU(0.2), D(2, 3)], 3, 5),
        "deep_norm_residual_8": ([D(3, 6), nb.BatchNorm1d(6), nb.Tanh(), R([D(6, 6), nb.LayerNorm(6), nb.GELU()]),
                                  D(6, 6), nb.Dropout(0.2), nb.ELU(),
                                  R([D(6, 6), nb.BatchNorm1d(6), nb.SiLU(), D(6, 6)]),
                                  D(6, 4), nb.LayerNorm(4), nb.Tanh(), D(4, 2)], 7, 5),
        "deep_width1_8": ([D(2, 1)] + [l for _ in range(8) for l in (nb.Tanh(), D(1, 1))], 3, 1),
    }


LAYER_CASES = _layer_cases()


@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_layer_grad_matches_finite_differences(name, gradcheck_ok):
    layers, n, k_out = LAYER_CASES[name]
    net = nb.Sequential(layers, dtype="float64", seed=11)
    randomize_biases(net, 12)
    X, y = data(13, n, net.in_features), data(14, n, net.out_features)
    gradcheck_ok(net, X, y)
    # the normalisation layers again on a classification loss (other gradient shapes reach them)
    if net.out_features > 1 and n > 1:
        gradcheck_ok(net, X, np.arange(n) % net.out_features, loss="cross_entropy")


@pytest.mark.parametrize("seed", range(4))
def test_random_shape_grad_matches_finite_differences(seed, gradcheck_ok):
    """Widths, batch, depth and layer kinds drawn at random (seeded), 1 included."""
    rng = np.random.default_rng(100 + seed)
    width = int(rng.integers(1, 6))
    layers, pool = [nb.Dense(width, width)], [nb.Tanh, nb.ELU, nb.GELU, nb.SiLU, nb.Sigmoid, nb.Softplus]
    for _ in range(int(rng.integers(3, 8))):
        w = int(rng.integers(1, 6))
        layers += [pool[int(rng.integers(len(pool)))](), nb.Dense(width, w)]
        width = w
    net = nb.Sequential(layers, dtype="float64", seed=seed)
    randomize_biases(net, seed)
    n = int(rng.integers(1, 6))
    gradcheck_ok(net, data(seed, n, net.in_features), data(seed + 1, n, net.out_features))


def test_dropout_gradcheck_really_drops():
    """The dropout gradient check runs with a live mask: the training output differs from inference."""
    layers, n, _ = LAYER_CASES["dropout"]
    net = nb.Sequential(layers, dtype="float64", seed=11)
    X = data(13, n, 3)
    assert not np.allclose(net.forward(X, training=True), net.forward(X))


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_inference_grad_matches_finite_differences(affine, gradcheck_ok):
    """In inference BatchNorm is an affine map through the running statistics."""
    net = nb.Sequential([nb.Dense(3, 4), nb.BatchNorm1d(4, affine=affine), nb.Tanh(), nb.Dense(4, 2)],
                        dtype="float64", seed=1)
    for s in range(3):
        net.forward(data(s, 8, 3, scale=2.0), training=True)  # move the running statistics off (0, 1)
    gradcheck_ok(net, data(20, 1, 3), data(21, 1, 2), training=False)


def test_batchnorm_training_with_batch_of_one_raises():
    net = nb.Sequential([nb.Dense(3, 4), nb.BatchNorm1d(4)], dtype="float64")
    X, y = data(0, 1, 3), data(1, 1, 4)
    for call in (lambda: net.forward(X, training=True), lambda: net.loss_and_grad(X, y),
                 lambda: nb.gradcheck(net, X, y)):
        with pytest.raises(ValueError, match="BatchNorm1d"):
            call()
    assert net.forward(X).shape == (1, 4)  # inference takes one sample


def test_gradcheck_leaves_the_network_as_it_was():
    """Parameters, gradients, running statistics and the generator (later dropout masks)."""
    layers = [nb.Dense(3, 4), nb.BatchNorm1d(4), nb.Dropout(0.5), nb.Dense(4, 2)]
    net, twin = nb.Sequential(layers, dtype="float64"), nb.Sequential(layers, dtype="float64")
    X, y = data(0, 5, 3), data(1, 5, 2)
    twin.loss_and_grad(X, y)
    net.loss_and_grad(X, y)
    before = [p.value.copy() for p in net.parameters()], [p.grad.copy() for p in net.parameters()], \
        {k: v.copy() for k, v in net.buffers().items()}
    nb.gradcheck(net, X, y)
    for a, b in zip(before[0] + before[1], [p.value for p in net.parameters()] + [p.grad for p in net.parameters()]):
        np.testing.assert_array_equal(a, b)
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(before[2][k], v)
    # the same next dropout mask as a twin that had no check (equal to rounding: separate engines)
    np.testing.assert_allclose(net.forward(X, training=True), twin.forward(X, training=True), rtol=1e-12)


def test_gradcheck_agrees_with_independent_numpy_differences():
    """nb.gradcheck's own stencil is C++; this cross-checks the analytic gradients once more with
    central differences taken here through the public loss()."""
    net = nb.Sequential([nb.Dense(3, 4), nb.GELU(), nb.LayerNorm(4), nb.Dense(4, 2)], dtype="float64", seed=2)
    X, y = data(0, 3, 3), data(1, 3, 2)
    net.zero_grad()
    _, dx = net.loss_and_grad(X, y, return_input_grad=True)
    h = 1e-6
    num_dx = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        num_dx[idx] = (net.loss(Xp, y) - net.loss(Xm, y)) / (2 * h)  # no noise or batch stats here
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-9)
    w = net.parameters()[0]
    num_dw = np.zeros_like(w.value)
    for idx in np.ndindex(w.shape):
        orig = w.value[idx]
        w.value[idx] = orig + h
        lp = net.loss(X, y)
        w.value[idx] = orig - h
        lm = net.loss(X, y)
        w.value[idx] = orig
        num_dw[idx] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(w.grad, num_dw, rtol=1e-6, atol=1e-9)


def test_gradcheck_flags_a_kink():
    """On a kink the check must fail: ReLU at exactly 0 has one-sided slopes 0 and 1, the engine
    reports 0, the central difference their mean. This is why the tests above keep off kinks."""
    net = nb.Sequential([nb.ReLU()], dtype="float64", in_features=2)
    r = nb.gradcheck(net, np.array([[0.0, 1.0]]), np.array([[-1.0, 0.0]]))
    assert r.worst == "input" and r.max_error > 0.1
