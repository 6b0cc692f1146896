"""Forward behaviour of the non-activation layers against numpy and PyTorch's conventions:
Dense, BatchNorm1d (running statistics: momentum weights the new batch statistic, running
variance unbiased), LayerNorm, Dropout (inverted, seeded), Residual (nested, Sequential blocks)."""
import numpy as np
import pytest

import nativebp as nb
from conftest import data, rel_err


def params(net):
    return {p.name: p.value for p in net.parameters()}


@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_is_x_w_plus_b(bias):
    net = nb.Sequential([nb.Dense(4, 3, bias=bias)], dtype="float64", seed=0)
    p = params(net)
    assert p["0.weight"].shape == (4, 3) and (("0.bias" in p) == bias)
    if bias:
        p["0.bias"][...] = [0.5, -1.0, 2.0]
    X = data(0, 5, 4)
    np.testing.assert_allclose(net.forward(X), X @ p["0.weight"] + (p["0.bias"] if bias else 0), rtol=1e-14)


# ------------------------------------------------------------------------------------ BatchNorm1d
def batchnorm_net(momentum=0.1, eps=1e-5, affine=True, k=4):
    net = nb.Sequential([nb.BatchNorm1d(k, eps=eps, momentum=momentum, affine=affine)], dtype="float64")
    if affine:
        p = params(net)
        p["0.weight"][...] = np.linspace(0.5, 2.0, k)
        p["0.bias"][...] = np.linspace(-1.0, 1.0, k)
    return net


@pytest.mark.parametrize("momentum,eps,affine", [(0.1, 1e-5, True), (0.3, 1e-3, False), (1.0, 1e-5, True),
                                                 (0.0, 1e-5, True)])
def test_batchnorm_running_statistics_follow_torch(momentum, eps, affine):
    net = batchnorm_net(momentum, eps, affine)
    gamma, beta = (np.linspace(0.5, 2.0, 4), np.linspace(-1.0, 1.0, 4)) if affine else (1.0, 0.0)
    rm, rv = np.zeros(4), np.ones(4)
    for s, n in enumerate((5, 8, 3)):
        X = data(s, n, 4, scale=3.0) + np.arange(4)
        out = net.forward(X, training=True)
        mean, var = X.mean(0), X.var(0)  # the biased variance normalises the batch
        np.testing.assert_allclose(out, (X - mean) / np.sqrt(var + eps) * gamma + beta, rtol=1e-12, atol=1e-12)
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * X.var(0, ddof=1)  # the running one is unbiased
        buf = net.buffers()
        np.testing.assert_allclose(buf["0.running_mean"], rm, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(buf["0.running_var"], rv, rtol=1e-13)
        assert buf["0.num_batches_tracked"][0] == s + 1
    # inference uses the running statistics and leaves them alone
    X = data(9, 2, 4)
    np.testing.assert_allclose(net.forward(X), (X - rm) / np.sqrt(rv + eps) * gamma + beta, rtol=1e-12)
    np.testing.assert_allclose(net.buffers()["0.running_mean"], rm, rtol=1e-13, atol=1e-15)
    assert net.buffers()["0.num_batches_tracked"][0] == 3


def test_batchnorm_inference_does_not_touch_running_statistics():
    net = batchnorm_net(0.5)
    net.forward(data(0, 6, 4), training=True)
    before = {k: v.copy() for k, v in net.buffers().items()}
    net.forward(data(1, 6, 4))
    net.predict(data(2, 7, 4), batch_size=3)
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(v, before[k])


def test_batchnorm_training_step_updates_running_statistics():
    net = nb.Sequential([nb.Dense(3, 4), nb.BatchNorm1d(4)], dtype="float64")
    X = data(0, 6, 3)
    h = X @ params(net)["0.weight"] + params(net)["0.bias"]
    net.loss_and_grad(X, data(1, 6, 4))
    np.testing.assert_allclose(net.buffers()["1.running_mean"], 0.1 * h.mean(0), rtol=1e-13)
    np.testing.assert_allclose(net.buffers()["1.running_var"], 0.9 + 0.1 * h.var(0, ddof=1), rtol=1e-13)


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    net = batchnorm_net(0.2, 1e-4)
    bn = torch.nn.BatchNorm1d(4, eps=1e-4, momentum=0.2).double()
    with torch.no_grad():
        bn.weight[...] = torch.tensor(params(net)["0.weight"])
        bn.bias[...] = torch.tensor(params(net)["0.bias"])
    for s in range(4):
        X = data(s, 6, 4, scale=2.0) + 1
        np.testing.assert_allclose(net.forward(X, training=True), bn.train()(torch.tensor(X)).detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.buffers()["0.running_mean"], bn.running_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(net.buffers()["0.running_var"], bn.running_var.numpy(), rtol=1e-13)
    X = data(9, 3, 4)
    np.testing.assert_allclose(net.forward(X), bn.eval()(torch.tensor(X)).detach().numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------ LayerNorm
@pytest.mark.parametrize("affine,eps", [(True, 1e-5), (False, 1e-2)])
def test_layernorm_normalises_each_sample(affine, eps):
    net = nb.Sequential([nb.LayerNorm(5, eps=eps, elementwise_affine=affine)], dtype="float64")
    gamma, beta = 1.0, 0.0
    if affine:
        gamma, beta = np.linspace(0.5, 1.5, 5), np.linspace(-0.2, 0.2, 5)
        params(net)["0.weight"][...], params(net)["0.bias"][...] = gamma, beta
    else:
        assert net.parameters() == []
    X = data(0, 4, 5, scale=3.0) + 2
    expected = (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + eps) * gamma + beta
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.forward(X, training=True), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.forward(X[:1]), expected[:1], rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------ Dropout
def test_dropout_is_inverted_and_identity_in_inference():
    p = 0.3
    net = nb.Sequential([nb.Dropout(p)], dtype="float64", in_features=200)
    X = data(0, 500, 200) + 3
    np.testing.assert_array_equal(net.forward(X), X)
    out = net.forward(X, training=True)
    kept = out != 0
    np.testing.assert_allclose(out[kept], X[kept] / (1 - p), rtol=1e-15)
    assert np.mean(~kept) == pytest.approx(p, abs=0.005)  # 100,000 draws: std of the fraction ~0.0015
    assert out.mean() == pytest.approx(X.mean(), rel=0.01)  # the expectation is kept


def test_dropout_masks_are_seeded_and_fresh_each_call():
    X = data(0, 20, 30)
    a = nb.Sequential([nb.Dropout(0.5)], dtype="float64", in_features=30, seed=4)
    b = nb.Sequential([nb.Dropout(0.5)], dtype="float64", in_features=30, seed=4)
    c = nb.Sequential([nb.Dropout(0.5)], dtype="float64", in_features=30, seed=5)
    first = a.forward(X, training=True)
    np.testing.assert_array_equal(first, b.forward(X, training=True))
    assert not np.array_equal(first == 0, c.forward(X, training=True) == 0)
    assert not np.array_equal(first == 0, a.forward(X, training=True) == 0)


def test_dropout_zero_keeps_everything():
    net = nb.Sequential([nb.Dropout(0.0)], dtype="float64", in_features=3)
    X = data(0, 4, 3)
    np.testing.assert_array_equal(net.forward(X, training=True), X)


def test_dropout_backward_uses_the_forward_mask():
    net = nb.Sequential([nb.Dropout(0.5)], dtype="float64", in_features=6, seed=1)
    X = data(0, 5, 6) + 5  # no zeros in X, so zeros in the output mark dropped elements
    net.zero_grad()
    _, dx = net.loss_and_grad(X, np.zeros((5, 6)), return_input_grad=True)
    # mse against 0: dL/dy = 2 y / m; kept: y = x / (1 - p) = 2 x, so dL/dx = 2 (2 x) / m * 2; dropped: 0
    dropped = dx == 0
    assert 0 < dropped.sum() < dx.size
    np.testing.assert_allclose(dx[~dropped], 2 * (X[~dropped] * 2) / X.size * 2, rtol=1e-14)


# ------------------------------------------------------------------------------------ Residual
def test_residual_adds_the_block_output():
    net = nb.Sequential([nb.Residual([nb.Dense(3, 3), nb.Tanh(), nb.Dense(3, 3)])], dtype="float64", seed=1)
    p = params(net)
    assert list(p) == ["0.block.0.weight", "0.block.0.bias", "0.block.2.weight", "0.block.2.bias"]
    p["0.block.0.bias"][...] = [0.1, -0.2, 0.3]
    X = data(0, 4, 3)
    fx = np.tanh(X @ p["0.block.0.weight"] + p["0.block.0.bias"]) @ p["0.block.2.weight"] + p["0.block.2.bias"]
    np.testing.assert_allclose(net.forward(X), X + fx, rtol=1e-14)


def test_nested_residual_and_sequential_block():
    inner = nb.Sequential([nb.Dense(3, 3), nb.Tanh()], dtype="float64")
    net = nb.Sequential([nb.Residual([nb.Dense(3, 3), nb.Residual(inner)])], dtype="float64", seed=2)
    p = params(net)
    assert list(p) == ["0.block.0.weight", "0.block.0.bias", "0.block.1.block.0.weight", "0.block.1.block.0.bias"]
    X = data(0, 4, 3)
    h = X @ p["0.block.0.weight"] + p["0.block.0.bias"]
    expected = X + (h + np.tanh(h @ p["0.block.1.block.0.weight"] + p["0.block.1.block.0.bias"]))
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-14)


def test_residual_block_must_keep_the_width():
    with pytest.raises(ValueError, match="width|Residual"):
        nb.Sequential([nb.Residual([nb.Dense(3, 4)])], dtype="float64")


def test_parameters_are_views_into_nested_blocks():
    net = nb.Sequential([nb.Residual([nb.Dense(2, 2)])], dtype="float64")
    X = data(0, 3, 2)
    for p in net.parameters():
        p.value[...] = 0
    np.testing.assert_array_equal(net.forward(X), X)
    assert rel_err(net.forward(X, training=True), X) == 0
