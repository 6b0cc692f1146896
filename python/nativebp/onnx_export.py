"""ONNX export: ``net.export_onnx("model.onnx")`` writes a standard ONNX model (needs ``onnx``).

>>> import nativebp as nb
>>> net = nb.Sequential([nb.Dense(4, 8), nb.ReLU(), nb.Dense(8, 3), nb.Softmax()])
>>> model = net.export_onnx("model.onnx")          # doctest: +SKIP
>>> import onnxruntime as ort                       # doctest: +SKIP
>>> ort.InferenceSession("model.onnx").run(None, {"input": X})[0]   # == net.predict(X)

The graph computes ``net.forward`` (inference mode): input ``"input"`` of shape
``(batch, in_features)`` with a dynamic batch dimension, output ``"output"``; the tensor type is
the network's dtype (float or double). Layers map to: Dense -> Gemm (MatMul without bias), ReLU
-> Relu, LeakyReLU -> LeakyRelu, ELU -> Elu, SELU -> Selu (PyTorch's constants), GELU -> Gelu
(opset >= 20) or ``0.5 x (1 + erf(x / sqrt 2))``, Sigmoid, Tanh, Softplus -> ``Softplus(beta x) /
beta`` with PyTorch's linear branch above ``threshold`` (Where), SiLU -> ``x * Sigmoid(x)``,
Softmax -> Softmax(axis=-1), BatchNorm1d -> BatchNormalization (running statistics), LayerNorm ->
LayerNormalization (axis=-1), Residual -> its block then Add; Dropout and Identity vanish.
Parameters become initializers named as in ``net.parameters()``. In float64 models, where
onnxruntime has only float kernels, ELU/SELU/Softplus/LeakyReLU are spelled with elementary
operators and GELU's erf is evaluated in float (so GELU is float-accurate there).
"""
from __future__ import annotations

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - exercised only without onnx
    raise ImportError("export_onnx needs the onnx package: pip install 'nativebp[onnx]'") from e

from . import layers as L
from .network import Sequential

__all__ = ["export_onnx", "MIN_OPSET"]

MIN_OPSET = 17  # LayerNormalization
_SELU_ALPHA, _SELU_GAMMA = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


class _Graph:
    """Nodes and initializers under construction; names are unique by a running counter."""

    def __init__(self, net, opset):
        self.net, self.opset, self.dtype = net, opset, np.dtype(net.dtype)
        self.double = net.dtype == "float64"
        self.nodes, self.inits, self._n = [], [], 0
        self.params = {p.name: p.value for p in net.parameters()}
        self.buffers = net.buffers()

    def name(self, hint):
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint, value):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=self.dtype), name))
        return name

    def param(self, name, value=None):
        value = self.params[name] if value is None else value
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=self.dtype), name))
        return name

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # onnxruntime's CPU kernels for Elu, Selu, Softplus, LeakyRelu (opset 16+) and Erf are float
    # only, so double models spell them with elementary operators
    def where_positive(self, x, negative, path):
        return self.op("Where", [self.op("Greater", [x, self.const("zero", 0.0)]), x, negative], path)

    def elu(self, x, alpha, path):
        if not self.double:
            return self.op("Elu", [x], path, alpha=alpha)
        em1 = self.op("Sub", [self.op("Exp", [x]), self.const("one", 1.0)])  # alpha (exp(x) - 1) for x <= 0
        return self.where_positive(x, self.op("Mul", [em1, self.const("alpha", alpha)]), path)

    def softplus(self, x, path):
        if not self.double:
            return self.op("Softplus", [x], path)
        # log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): no overflow
        tail = self.op("Log", [self.op("Add", [self.const("one", 1.0), self.op("Exp", [self.op("Neg", [self.op(
            "Abs", [x])])])])])
        return self.op("Add", [self.op("Relu", [x]), tail], path)

    # --------------------------------------------------------------------- layers
    def layers(self, layers, x, prefix):
        for i, layer in enumerate(layers):
            x = self.layer(layer, x, f"{prefix}{i}")
        return x

    def layer(self, layer, x, path):
        simple = {L.ReLU: "Relu", L.Sigmoid: "Sigmoid", L.Tanh: "Tanh"}
        if type(layer) in simple:
            return self.op(simple[type(layer)], [x], path)
        if isinstance(layer, (L.Identity, L.Dropout)):  # inference: identity
            return x
        if isinstance(layer, L.Dense):
            w = self.param(f"{path}.weight")
            if layer.bias:
                return self.op("Gemm", [x, w, self.param(f"{path}.bias")], path)
            return self.op("MatMul", [x, w], path)
        if isinstance(layer, L.LeakyReLU):
            if self.double:
                return self.where_positive(x, self.op("Mul", [x, self.const("alpha", layer.alpha)]), path)
            return self.op("LeakyRelu", [x], path, alpha=layer.alpha)
        if isinstance(layer, L.ELU):
            return self.elu(x, layer.alpha, path)
        if isinstance(layer, L.SELU):
            if self.double:
                return self.op("Mul", [self.elu(x, _SELU_ALPHA, path), self.const("gamma", _SELU_GAMMA)], path)
            return self.op("Selu", [x], path, alpha=_SELU_ALPHA, gamma=_SELU_GAMMA)
        if isinstance(layer, L.GELU):
            if self.opset >= 20 and not self.double:
                return self.op("Gelu", [x], path, approximate="none")
            z = self.op("Mul", [x, self.const("inv_sqrt2", 1 / np.sqrt(2.0))])
            if self.double:  # onnxruntime has no double Erf: evaluate erf in float (float precision)
                z = self.op("Cast", [self.op("Erf", [self.op("Cast", [z], to=TensorProto.FLOAT)])],
                            to=TensorProto.DOUBLE)
            else:
                z = self.op("Erf", [z], path)
            half_x = self.op("Mul", [x, self.const("half", 0.5)])
            return self.op("Mul", [half_x, self.op("Add", [z, self.const("one", 1.0)])], path)
        if isinstance(layer, L.Softplus):
            # PyTorch: y = x where beta x > threshold, else log(1 + exp(beta x)) / beta
            bx = x if layer.beta == 1 else self.op("Mul", [x, self.const("beta", layer.beta)])
            soft = self.softplus(bx, path)
            if layer.beta != 1:
                soft = self.op("Div", [soft, self.const("beta", layer.beta)])
            linear = self.op("Greater", [bx, self.const("threshold", layer.threshold)])
            return self.op("Where", [linear, x, soft], path)
        if isinstance(layer, L.SiLU):
            return self.op("Mul", [x, self.op("Sigmoid", [x])], path)
        if isinstance(layer, L.Softmax):
            return self.op("Softmax", [x], path, axis=-1)
        if isinstance(layer, L.BatchNorm1d):
            n = layer.num_features
            scale = self.param(f"{path}.weight") if layer.affine else self.const(f"{path}.weight", np.ones(n))
            bias = self.param(f"{path}.bias") if layer.affine else self.const(f"{path}.bias", np.zeros(n))
            mean = self.param(f"{path}.running_mean", self.buffers[f"{path}.running_mean"])
            var = self.param(f"{path}.running_var", self.buffers[f"{path}.running_var"])
            return self.op("BatchNormalization", [x, scale, bias, mean, var], path, epsilon=layer.eps)
        if isinstance(layer, L.LayerNorm):
            n = layer.num_features
            affine = layer.elementwise_affine
            scale = self.param(f"{path}.weight") if affine else self.const(f"{path}.weight", np.ones(n))
            bias = self.param(f"{path}.bias") if affine else self.const(f"{path}.bias", np.zeros(n))
            return self.op("LayerNormalization", [x, scale, bias], path, axis=-1, epsilon=layer.eps)
        if isinstance(layer, L.Residual):
            return self.op("Add", [x, self.layers(layer.layers, x, f"{path}.block.")], path)
        raise TypeError(f"export_onnx: no ONNX mapping for layer {type(layer).__name__}")


def export_onnx(net, path=None, opset=MIN_OPSET, producer="nativebp"):
    """Build (and, when ``path`` is given, save) an ONNX model computing ``net.forward``.

    ``opset`` >= 17 (LayerNormalization); from 20 on, GELU is exported as the Gelu operator.
    The model passes ``onnx.checker``. Returns the ``onnx.ModelProto``.
    """
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a nativebp Sequential, got {type(net).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset: expected an integer >= {MIN_OPSET} (LayerNormalization), got {opset!r}")
    g = _Graph(net, opset)
    out = g.layers(net.layers, "input", "")
    g.nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
    elem = TensorProto.FLOAT if net.dtype == "float32" else TensorProto.DOUBLE
    graph = helper.make_graph(
        g.nodes, "nativebp_sequential",
        [helper.make_tensor_value_info("input", elem, ["batch", net.in_features])],
        [helper.make_tensor_value_info("output", elem, ["batch", net.out_features])], g.inits)
    from . import __version__
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, producer_name=producer, producer_version=__version__, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))  # readable by older runtimes
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, str(path))
    return model
