"""ONNX export: onnxruntime reproduces net.predict for every supported layer, in float32 and
float64, at any batch size."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import nativebp as nb  # noqa: E402
from nativebp.onnx_export import export_onnx  # noqa: E402

LAYERS = {  # each after a Dense(6, 6), so inputs reach both sides of every kink and threshold
    "relu": nb.ReLU(), "leaky_relu": nb.LeakyReLU(0.2), "elu": nb.ELU(0.7), "selu": nb.SELU(), "gelu": nb.GELU(),
    "sigmoid": nb.Sigmoid(), "tanh": nb.Tanh(), "softplus": nb.Softplus(), "softplus_beta_threshold":
    nb.Softplus(beta=2.0, threshold=1.5), "silu": nb.SiLU(), "softmax": nb.Softmax(), "identity": nb.Identity(),
    "dropout": nb.Dropout(0.4), "batchnorm": nb.BatchNorm1d(6), "batchnorm_no_affine": nb.BatchNorm1d(6, affine=False),
    "layernorm": nb.LayerNorm(6), "layernorm_no_affine": nb.LayerNorm(6, elementwise_affine=False),
    "residual": nb.Residual([nb.Dense(6, 6), nb.Tanh(), nb.Dense(6, 6, bias=False)]),
}


def _run(net, X, tmp_path, opset=17):
    path = tmp_path / "model.onnx"
    net.export_onnx(path, opset=opset)
    session = ort.InferenceSession(str(path))
    return session.run(None, {"input": np.ascontiguousarray(X, dtype=net.dtype)})[0]


def _with_statistics(net, rng):
    for _ in range(3):  # training-mode passes move BatchNorm's running statistics off (0, 1)
        net.forward(rng.normal(size=(32, net.in_features)) * 2 + 1, training=True)
    for p in net.parameters():  # non-trivial norm scales and shifts
        if not p.is_weight:
            p.value[...] = rng.uniform(0.5, 1.5, p.shape) if p.name.endswith("weight") else rng.normal(size=p.shape)
    return net


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-6), ("float64", 1e-11)])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_exports_and_onnxruntime_matches_predict(name, dtype, tol, tmp_path):
    rng = np.random.default_rng(0)
    net = _with_statistics(nb.Sequential([nb.Dense(6, 6), LAYERS[name], nb.Dense(6, 3)], dtype=dtype, seed=1), rng)
    X = rng.normal(size=(50, 6)) * 3
    if name == "gelu" and dtype == "float64":
        tol = 1e-7  # onnxruntime has no double Erf: the export evaluates erf in float
    np.testing.assert_allclose(_run(net, X, tmp_path), net.predict(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("dtype, tol", [("float32", 2e-6), ("float64", 1e-7)])
def test_network_with_every_layer_matches_at_any_batch_size(opset, dtype, tol, tmp_path):
    rng = np.random.default_rng(1)
    inner = [layer for name, layer in LAYERS.items()]
    layers = [x for layer in inner for x in (nb.Dense(6, 6), layer)] + [nb.Dense(6, 4)]
    net = _with_statistics(nb.Sequential(layers, dtype=dtype, seed=0), rng)
    path = tmp_path / "every.onnx"
    model = net.export_onnx(path, opset=opset)
    ops = {node.op_type for node in model.graph.node}
    assert ("Gelu" in ops) == (opset >= 20 and dtype == "float32") and "LayerNormalization" in ops
    session = ort.InferenceSession(str(path))
    for n in (1, 37):  # dynamic batch dimension
        X = rng.normal(size=(n, 6)).astype(dtype) * 2
        np.testing.assert_allclose(session.run(None, {"input": X})[0], net.predict(X), rtol=tol, atol=tol)


def test_exported_graph_is_standard_and_named_from_parameters(tmp_path):
    net = nb.Sequential([nb.Dense(4, 8), nb.ReLU(), nb.Dense(8, 2)], seed=0)
    model = export_onnx(net, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)
    assert [i.name for i in model.graph.initializer] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm", "Identity"]


def test_bad_arguments_raise_clear_errors(tmp_path):
    net = nb.Sequential([nb.Dense(2, 2)])
    with pytest.raises(ValueError, match="opset: expected an integer >= 17"):
        net.export_onnx(tmp_path / "m.onnx", opset=13)
    with pytest.raises(TypeError, match="net: expected a nativebp Sequential"):
        export_onnx("not a net")
