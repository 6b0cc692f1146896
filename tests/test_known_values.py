"""Known values: activations, losses and initializers against hand formulas and PyTorch's
definitions (LeakyReLU(0.01), ELU(1.0), exact GELU, SELU's constants, Softplus(beta=1,
threshold=20), HuberLoss(delta=1.0), mean reduction), extreme logits, and optional cross-checks
against torch itself where it is installed."""
import math

import numpy as np
import pytest

import nativebp as nb
from conftest import data

# torch.nn.SELU's constants
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# wide range, the kinks themselves and values near softplus's threshold
X_ACT = np.array([[-30.0, -5.0, -1.0, -0.1, 0.0, 1e-3, 0.5, 1.0, 3.0, 19.9, 20.0, 20.1, 30.0]])


def sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


ACT_FORMULAS = {
    "identity": (nb.Identity(), lambda x: x),
    "relu": (nb.ReLU(), lambda x: np.maximum(x, 0)),
    "leaky_relu": (nb.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    "leaky_relu_0.2": (nb.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "elu": (nb.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_0.5": (nb.ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "selu": (nb.SELU(), lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "gelu": (nb.GELU(), np.vectorize(lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))))),
    "sigmoid": (nb.Sigmoid(), sigmoid),
    "tanh": (nb.Tanh(), np.tanh),
    "softplus": (nb.Softplus(), softplus),
    "softplus_beta2_th5": (nb.Softplus(beta=2.0, threshold=5.0), lambda x: softplus(x, 2.0, 5.0)),
    "silu": (nb.SiLU(), lambda x: x * sigmoid(x)),
    "softmax": (nb.Softmax(), lambda x: np.exp(x - x.max(1, keepdims=True)) / np.exp(x - x.max(1, keepdims=True)).sum(
        1, keepdims=True)),
}


def single(layer, k, dtype="float64"):
    return nb.Sequential([layer], dtype=dtype, in_features=k)


@pytest.mark.parametrize("name", list(ACT_FORMULAS))
def test_activation_forward_matches_formula(name):
    layer, f = ACT_FORMULAS[name]
    X = np.vstack([X_ACT, -X_ACT, X_ACT / 7])
    out = single(layer, X.shape[1]).forward(X)
    np.testing.assert_allclose(out, f(X), rtol=1e-13, atol=1e-300)
    out32 = single(layer, X.shape[1], "float32").forward(X)
    np.testing.assert_allclose(out32, f(X), rtol=3e-6, atol=1e-7 * np.abs(f(X)).max())


@pytest.mark.parametrize("name,x,expected", [  # literal values, independent of the formulas above
    ("gelu", 1.0, 0.8413447460685429), ("gelu", -1.0, -0.15865525393145707), ("selu", -1.0, -1.1113307378125628),
    ("selu", 2.0, 2.101401974710961), ("elu", -1.0, -0.6321205588285577), ("softplus", 0.0, math.log(2)),
    ("softplus", 25.0, 25.0), ("silu", 1.0, 0.7310585786300049), ("sigmoid", -40.0, 4.248354255291589e-18),
    ("leaky_relu", -3.0, -0.03), ("tanh", 0.5, 0.46211715726000974),
])
def test_activation_forward_known_value(name, x, expected):
    out = single(ACT_FORMULAS[name][0], 1).forward(np.array([[x]]))
    assert out[0, 0] == pytest.approx(expected, rel=1e-14, abs=0)


def test_softmax_rows_sum_to_one_and_survive_huge_logits():
    X = np.array([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0], [-1e4, -1e4 + 1, -1e4 + 2]])
    for dtype in ("float64", "float32"):
        out = single(nb.Softmax(), 3, dtype).forward(X)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out.sum(1), 1, rtol=1e-6)
        np.testing.assert_allclose(out[2], np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum(), rtol=1e-5)


# ------------------------------------------------------------------------------------ losses
Z = np.array([[1.0, 2.0], [3.0, 4.0]])
T = np.array([[0.0, 2.0], [1.0, 1.0]])  # residuals 1, 0, 2, 3: at, inside and beyond Huber's deltas


@pytest.mark.parametrize("loss,delta,expected", [
    ("mse", 1.0, (1 + 0 + 4 + 9) / 4),
    ("mae", 1.0, (1 + 0 + 2 + 3) / 4),
    ("huber", 1.0, (0.5 + 0 + 1.5 + 2.5) / 4),         # |d| >= delta: delta (|d| - delta / 2)
    ("huber", 2.0, (0.5 + 0 + 2.0 + 4.0) / 4),         # |d| < delta: d^2 / 2
    ("huber", 0.5, (0.375 + 0 + 0.875 + 1.375) / 4),
])
def test_regression_loss_known_value(loss, delta, expected):
    net = single(nb.Identity(), 2)
    assert net.loss(Z, T, loss=loss, delta=delta) == pytest.approx(expected, rel=1e-15)
    assert net.loss_and_grad(Z, T, loss=loss, delta=delta) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("loss,delta,grad", [
    ("mse", 1.0, 2 * (Z - T) / 4),
    ("mae", 1.0, np.sign(Z - T) / 4),
    ("huber", 1.0, np.clip(Z - T, -1, 1) / 4),
    ("huber", 2.5, np.clip(Z - T, -2.5, 2.5) / 4),
])
def test_regression_loss_gradient_known_value(loss, delta, grad):
    _, dx = single(nb.Identity(), 2).loss_and_grad(Z, T, loss=loss, delta=delta, return_input_grad=True)
    np.testing.assert_allclose(dx, grad, rtol=1e-15)


def test_huber_default_delta_is_one():
    net = single(nb.Identity(), 2)
    assert net.loss(Z, T, loss="huber") == net.loss(Z, T, loss="huber", delta=1.0) == 1.125


def test_binary_cross_entropy_known_value():
    z, t = np.array([[0.0, 2.0, -1.0, 5.0]]), np.array([[1.0, 0.0, 0.5, 1.0]])
    # -[t log s(z) + (1 - t) log(1 - s(z))] = softplus(z) - t z
    expected = np.mean(np.log1p(np.exp(z)) - t * z)
    net = single(nb.Identity(), 4)
    assert net.loss(z, t, loss="binary_cross_entropy") == pytest.approx(expected, rel=1e-14)
    assert net.loss(z, t, loss="bce") == pytest.approx(expected, rel=1e-14)
    _, dx = net.loss_and_grad(z, t, loss="binary_cross_entropy", return_input_grad=True)
    np.testing.assert_allclose(dx, (sigmoid(z) - t) / 4, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binary_cross_entropy_with_huge_logits_is_finite(dtype):
    z, t = np.array([[1e4, -1e4, 1e4, -1e4]]), np.array([[1.0, 0.0, 0.0, 1.0]])
    net = single(nb.Identity(), 4, dtype)
    value, dx = net.loss_and_grad(z, t, loss="binary_cross_entropy", return_input_grad=True)
    assert value == pytest.approx((0 + 0 + 1e4 + 1e4) / 4, rel=1e-7)
    np.testing.assert_allclose(dx, np.array([[0, 0, 1, -1]]) / 4, atol=1e-12)


def test_cross_entropy_known_value_labels_onehot_and_probabilities():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    lse = np.log(np.exp(z).sum(1, keepdims=True))
    net = single(nb.Identity(), 3)
    by_label = ((lse[0, 0] - 3.0) + math.log(3)) / 2
    assert net.loss(z, np.array([2, 0]), loss="cross_entropy") == pytest.approx(by_label, rel=1e-14)
    assert net.loss(z, np.eye(3)[[2, 0]], loss="cross_entropy") == pytest.approx(by_label, rel=1e-14)
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    assert net.loss(z, p, loss="cross_entropy") == pytest.approx(np.mean((p * (lse - z)).sum(1)), rel=1e-14)
    softmax = np.exp(z - lse)
    _, dx = net.loss_and_grad(z, np.array([2, 0]), loss="cross_entropy", return_input_grad=True)
    np.testing.assert_allclose(dx, (softmax - np.eye(3)[[2, 0]]) / 2, rtol=1e-14)
    _, dx = net.loss_and_grad(z, p, loss="cross_entropy", return_input_grad=True)
    np.testing.assert_allclose(dx, (softmax - p) / 2, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_with_huge_logits_is_finite_and_correct(dtype):
    z = np.array([[1e4, 0.0, -1e4]] * 3)
    net = single(nb.Identity(), 3, dtype)
    for label, expected in ((0, 0.0), (1, 1e4), (2, 2e4)):
        value, dx = net.loss_and_grad(z[:1], np.array([label]), loss="cross_entropy", return_input_grad=True)
        assert value == pytest.approx(expected, abs=1e-3)
        np.testing.assert_allclose(dx[0], np.array([1.0, 0, 0]) - np.eye(3)[label], atol=1e-12)
    assert net.loss(z, np.array([0, 1, 2]), loss="cross_entropy") == pytest.approx(1e4, rel=1e-6)


def test_losses_are_mean_reduced():
    """Doubling the batch with copies of the same rows leaves every loss unchanged."""
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((3, 2)), rng.uniform(0, 1, (3, 2))
    net = single(nb.Identity(), 2)
    for loss in ("mse", "mae", "huber", "binary_cross_entropy", "cross_entropy"):
        assert net.loss(np.vstack([z, z]), np.vstack([t, t]), loss=loss) == pytest.approx(net.loss(z, t, loss=loss),
                                                                                          rel=1e-14)


# ------------------------------------------------------------------------------------ initializers
FAN_IN, FAN_OUT = 400, 250  # 100,000 weights: sample std within ~0.5% of the true one


def weights(init, seed=0, init_arg=0.1, dtype="float64"):
    net = nb.Sequential([nb.Dense(FAN_IN, FAN_OUT, init=init, init_arg=init_arg)], dtype=dtype, seed=seed)
    return net.parameters()[0].value.copy(), net.parameters()[1].value.copy()


@pytest.mark.parametrize("init,bound", [
    ("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))), ("he_uniform", math.sqrt(6 / FAN_IN)),
    ("lecun_uniform", math.sqrt(3 / FAN_IN)), ("uniform", 0.1),
])
def test_uniform_initializer_bounds_and_spread(init, bound):
    w, b = weights(init)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert abs(w.mean()) < 0.01 * bound
    # flat: each tenth of [-a, a] holds ~10%
    hist = np.histogram(w, bins=10, range=(-bound, bound))[0] / w.size
    np.testing.assert_allclose(hist, 0.1, atol=0.01)
    assert (b == 0).all()


def test_uniform_initializer_takes_its_bound():
    w, _ = weights("uniform", init_arg=0.37)
    assert np.abs(w).max() <= 0.37 and np.abs(w).max() > 0.369


@pytest.mark.parametrize("init,std", [
    ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))), ("he_normal", math.sqrt(2 / FAN_IN)),
    ("lecun_normal", math.sqrt(1 / FAN_IN)), ("normal", 0.1),
])
def test_normal_initializer_std_and_shape(init, std):
    w, b = weights(init)
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.01 * std
    # a normal, not a uniform of the same std: 4.55% beyond 2 std, ~0.27% beyond 3 std
    assert np.mean(np.abs(w) > 2 * std) == pytest.approx(0.0455, abs=0.004)
    assert np.mean(np.abs(w) > 3 * std) == pytest.approx(0.0027, abs=0.001)
    assert (b == 0).all()


def test_zeros_initializer():
    w, b = weights("zeros")
    assert (w == 0).all() and (b == 0).all()


@pytest.mark.parametrize("init", ["xavier_uniform", "he_normal", "lecun_normal"])
def test_same_seed_same_weights_different_seed_different(init):
    w0, _ = weights(init, seed=7)
    np.testing.assert_array_equal(w0, weights(init, seed=7)[0])
    assert np.mean(w0 == weights(init, seed=8)[0]) < 1e-3
    # and float32 draws the same numbers, rounded
    np.testing.assert_allclose(weights(init, seed=7, dtype="float32")[0], w0, rtol=1e-6)


def test_layers_of_one_network_get_different_weights():
    net = nb.Sequential([nb.Dense(20, 20), nb.Dense(20, 20)], dtype="float64", seed=0)
    a, b = net.parameters()[0].value, net.parameters()[2].value
    assert np.mean(a == b) < 1e-3


# ------------------------------------------------------------------------------------ torch cross-checks
TORCH_ACTS = {  # name -> torch.nn module, from torch.nn
    "identity": lambda nn: nn.Identity(), "relu": lambda nn: nn.ReLU(), "leaky_relu": lambda nn: nn.LeakyReLU(),
    "leaky_relu_0.2": lambda nn: nn.LeakyReLU(0.2), "elu": lambda nn: nn.ELU(), "elu_0.5": lambda nn: nn.ELU(0.5),
    "selu": lambda nn: nn.SELU(), "gelu": lambda nn: nn.GELU(), "sigmoid": lambda nn: nn.Sigmoid(),
    "tanh": lambda nn: nn.Tanh(), "softplus": lambda nn: nn.Softplus(),
    "softplus_beta2_th5": lambda nn: nn.Softplus(beta=2.0, threshold=5.0), "silu": lambda nn: nn.SiLU(),
    "softmax": lambda nn: nn.Softmax(dim=1),
}


@pytest.mark.parametrize("name", list(TORCH_ACTS))
def test_activation_matches_torch(name):
    torch = pytest.importorskip("torch")
    X = np.vstack([X_ACT, -X_ACT, X_ACT / 7])
    module = TORCH_ACTS[name](torch.nn)
    xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    yt = module(xt)
    g = data(0, *X.shape)
    yt.backward(torch.tensor(g))
    net = single(ACT_FORMULAS[name][0], X.shape[1])
    np.testing.assert_allclose(net.forward(X), yt.detach().numpy(), rtol=1e-13, atol=1e-300)
    out = net.forward(X)
    _, dx = net.loss_and_grad(X, out - g * X.size / 2, loss="mse", return_input_grad=True)  # dL/dy = g
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss,delta", [("mse", 1), ("mae", 1), ("huber", 1.0), ("huber", 0.4),
                                        ("binary_cross_entropy", 1), ("cross_entropy", 1)])
def test_loss_matches_torch(loss, delta):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, t = data(0, 6, 3, scale=2.0), np.random.default_rng(1).uniform(0, 1, (6, 3))
    labels = np.array([0, 2, 1, 1, 0, 2])
    zt = torch.tensor(z, requires_grad=True)
    fn = {"mse": lambda: F.mse_loss(zt, torch.tensor(t)), "mae": lambda: F.l1_loss(zt, torch.tensor(t)),
          "huber": lambda: F.huber_loss(zt, torch.tensor(t), delta=delta),
          "binary_cross_entropy": lambda: F.binary_cross_entropy_with_logits(zt, torch.tensor(t)),
          "cross_entropy": lambda: F.cross_entropy(zt, torch.tensor(labels))}[loss]
    ref = fn()
    ref.backward()
    target = labels if loss == "cross_entropy" else t
    value, dx = single(nb.Identity(), 3).loss_and_grad(z, target, loss=loss, delta=delta, return_input_grad=True)
    assert value == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(dx, zt.grad.numpy(), rtol=1e-12, atol=1e-16)
