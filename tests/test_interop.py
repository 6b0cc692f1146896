"""PyTorch interop: torch -> nativebp -> torch keeps parameters, statistics and outputs, on a
network using every supported layer; gradients agree too."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import nativebp as nb  # noqa: E402
from nativebp.interop import Residual  # noqa: E402


def _every_layer_model(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Linear(16, 16), nn.LayerNorm(16), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        Residual(nn.Linear(16, 16), nn.ELU(0.7), nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16, affine=False)),
        nn.SELU(), nn.Linear(16, 12), nn.GELU(), nn.Linear(12, 12), nn.Sigmoid(),
        nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 12), nn.Softplus(beta=2.0, threshold=1.5),
        nn.Linear(12, 12), nn.SiLU(), nn.Identity(), nn.LayerNorm(12, elementwise_affine=False),
        nn.Linear(12, 5), nn.Softmax(dim=-1)).to(dtype)
    with torch.no_grad():  # training-mode passes give BatchNorm non-trivial running statistics
        for _ in range(3):
            model(torch.randn(32, 6, dtype=dtype) * 2 + 1)
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_every_supported_layer_converts_from_torch_with_equal_outputs(dtype, tol):
    model = _every_layer_model(dtype)
    net = nb.from_torch(model)
    assert net.dtype == ("float64" if dtype == torch.float64 else "float32")
    X = torch.randn(64, 6, dtype=dtype) * 3
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(X.numpy()), model(X).numpy(), rtol=tol, atol=tol)


def test_round_trip_torch_nativebp_torch_keeps_state_dict_and_outputs():
    model = _every_layer_model(torch.float64)
    back = nb.from_torch(model).to_torch()
    assert not back.training and list(back.state_dict()) == list(model.state_dict())
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    X = torch.randn(20, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(back(X), model(X), rtol=0, atol=1e-15)


def test_to_torch_matches_forward_and_parameter_names():
    net = nb.Sequential([nb.Dense(5, 7), nb.ReLU(), nb.Residual([nb.Dense(7, 7), nb.Tanh()]), nb.Dense(7, 3)],
                        dtype="float32", seed=3)
    model = net.to_torch()
    assert [n for n, _ in model.named_parameters()] == [p.name for p in net.parameters()]
    assert model[0].weight.shape == (7, 5)  # Linear is (out, in), Dense (in, out)
    X = np.random.default_rng(0).normal(size=(9, 5)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(X)).numpy(), net.forward(X), rtol=1e-5, atol=1e-6)


def test_converted_network_has_torchs_gradients_in_training_mode():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.LayerNorm(8),
                          Residual(nn.Linear(8, 8), nn.GELU()), nn.Linear(8, 3)).double()
    net = nb.from_torch(model)
    X, y = torch.randn(16, 4, dtype=torch.float64), torch.randint(0, 3, (16,))
    model.train()
    nn.functional.cross_entropy(model(X), y).backward()
    net.zero_grad()
    net.loss_and_grad(X.numpy(), y.numpy(), loss="cross_entropy")
    for p in net.parameters():
        expected = model.get_parameter(p.name).grad.numpy()
        np.testing.assert_allclose(p.grad, expected.T if p.grad.ndim == 2 else expected, rtol=1e-9, atol=1e-12)


def test_nested_sequentials_are_flattened():
    inner = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    model = nn.Sequential(inner, nn.Sequential(nn.Linear(4, 2)))
    net = nb.from_torch(model)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Tanh", "Dense"]
    X = torch.randn(5, 3)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(X.numpy()), model(X).numpy(), rtol=1e-5, atol=1e-6)


def test_frozen_torch_parameters_stay_frozen():
    model = nn.Sequential(nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    net = nb.from_torch(model)
    assert [p.trainable for p in net.parameters()] == [False, True]
    assert [p.requires_grad for p in net.to_torch().parameters()] == [False, True]


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1)), "module\\[1\\]: cannot convert torch module Conv1d"),
    (nn.Sequential(nn.Linear(3, 3), nn.GELU(approximate="tanh")), "approximate='tanh'"),
    (nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=0)), "Softmax\\(dim=0\\)"),
    (nn.Sequential(nn.BatchNorm1d(3, momentum=None)), "cumulative averaging"),
])
def test_unsupported_torch_modules_raise_errors_naming_them(module, match):
    with pytest.raises((TypeError, ValueError), match=match):
        nb.from_torch(module)


def test_from_torch_rejects_non_modules():
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        nb.from_torch([nn.Linear(2, 2)])
