"""Sequential: a network described in Python, compiled into the C++ engine.

All compute runs in ``nativebp._core`` with the GIL released; parameters and gradients are
numpy views of the engine's flat buffers, so writing ``p.value[...]`` changes the network.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from . import _core, io as _io, training as _training
from ._checks import as_dtype, as_matrix, as_target, check_int, check_loss, check_number
from .layers import BatchNorm1d, Dense, Layer, LayerNorm, Residual, make_layer

__all__ = ["Sequential", "Parameter"]

_ENGINES = {"float32": _core.Network32, "float64": _core.Network64}
_READY_LOSSES = frozenset(("mse", "mae", "huber", "binary_cross_entropy", "cross_entropy"))
_HAS_BATCH_OK = hasattr(_core.Network32, "batch_ok")  # engines built before it take the checked path


class Parameter:
    """One named parameter tensor: ``value`` and ``grad`` are numpy views into the engine.

    ``trainable = False`` freezes it: optimizers skip it and penalties leave it alone.
    """

    __slots__ = ("name", "value", "grad", "is_weight", "_net_ref", "_engine", "_index")

    def __init__(self, net, index, name, value, grad, is_weight):
        # a weak reference: the network holds its parameters, so a strong one would be a cycle that
        # keeps a dropped network's buffers alive until the cycle collector runs
        self._net_ref, self._engine, self._index = weakref.ref(net), net._engine, index
        self.name, self.value, self.grad, self.is_weight = name, value, grad, is_weight

    @property
    def _net(self):
        net = self._net_ref()
        if net is None:
            raise ReferenceError(f"parameter {self.name!r}: its network no longer exists")
        return net

    @property
    def shape(self):
        return self.value.shape

    @property
    def trainable(self):
        return self._engine.trainable()[self._index]

    @trainable.setter
    def trainable(self, on):
        self._engine.set_trainable(self._index, bool(on))

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.shape}, trainable={self.trainable})"


def _infer_in_features(layers):
    for layer in layers:
        if isinstance(layer, Dense):
            return layer.in_features
        if isinstance(layer, (BatchNorm1d, LayerNorm)):
            return layer.num_features
        if isinstance(layer, Residual):
            n = _infer_in_features(layer.layers)
            if n is not None:
                return n
    return None


class Sequential:
    """Layers applied in order, trained by backpropagation in C++.

    >>> import numpy as np, nativebp as nb
    >>> net = nb.Sequential([nb.Dense(2, 8), "tanh", nb.Dense(8, 1)], dtype="float64", seed=0)
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float); y = np.array([0, 1, 1, 0.0])
    >>> net.zero_grad(); loss = net.loss_and_grad(X, y, loss="mse")
    >>> [p.name for p in net.parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, layers, dtype="float32", seed=0, in_features=None):
        if isinstance(layers, (Layer, str)):
            layers = [layers]
        try:
            self.layers = [make_layer(l) for l in layers]
        except TypeError as e:
            raise TypeError(f"layers: expected a list of nativebp layers or activation names ({e})") from None
        self.dtype = as_dtype(dtype)
        self.seed = check_int("seed", seed, minimum=0)
        if in_features is None:
            in_features = _infer_in_features(self.layers)
            if in_features is None:
                raise ValueError("in_features: cannot be inferred (no Dense or normalisation layer); pass in_features=")
        self.in_features = check_int("in_features", in_features)
        specs, width = [], self.in_features
        for layer in self.layers:
            specs.append(layer.spec(width))
            width = layer.out_features(width)
        self._engine = _ENGINES[self.dtype](specs, self.in_features, self.seed)
        self._bind_views()

    def _bind_views(self):
        flat_v, flat_g, flat_s = self._engine.param_array(), self._engine.grad_array(), self._engine.state_array()
        self._params, offset = [], 0
        for i, (name, rows, cols, is_weight) in enumerate(self._engine.param_info()):
            shape = (rows,) if cols == 0 else (rows, cols)
            size = int(np.prod(shape))
            self._params.append(Parameter(self, i, name, flat_v[offset:offset + size].reshape(shape),
                                          flat_g[offset:offset + size].reshape(shape), is_weight))
            offset += size
        self._states, offset = {}, 0
        for name, rows, cols in self._engine.state_info():
            size = rows if cols == 0 else rows * cols
            self._states[name] = flat_s[offset:offset + size]
            offset += size

    # ----------------------------------------------------------------- description
    @property
    def out_features(self):
        return self._engine.out_features

    def __repr__(self):
        inner = ",\n".join(f"  {l!r}" for l in self.layers)
        return f"Sequential([\n{inner}\n], dtype={self.dtype!r}, seed={self.seed})"

    def __len__(self):
        return len(self.layers)

    def parameters(self):
        """The parameter tensors in order, as ``Parameter`` objects with numpy views."""
        return list(self._params)

    def named_parameters(self):
        return [(p.name, p) for p in self._params]

    def num_parameters(self, trainable_only=False):
        return int(sum(p.value.size for p in self._params if p.trainable or not trainable_only))

    def buffers(self):
        """Non-trainable state (BatchNorm running statistics) by name, as numpy views."""
        return dict(self._states)

    # ----------------------------------------------------------------- compute
    def forward(self, X, training=False):
        """Output for X, shape (n, out_features); inference mode unless ``training=True``."""
        if not self._ready(X):
            X = as_matrix("X", X, self.dtype, self.in_features)
        return self._engine.forward(X, bool(training))

    __call__ = forward

    def predict(self, X, batch_size=None):
        """Inference-mode output (alias of ``forward``), optionally in batches to bound memory."""
        if batch_size is None:
            return self.forward(X)
        X = as_matrix("X", X, self.dtype, self.in_features)
        batch_size = check_int("batch_size", batch_size)
        return np.concatenate([self._engine.forward(X[i:i + batch_size], False)
                               for i in range(0, len(X), batch_size)])

    def _ready(self, X, y=None, loss=None):
        """True when X (and y) can go to the engine as they are: already C-contiguous arrays of the
        network's dtype and shape, all finite, labels in range. One C++ pass checks that; anything
        else (conversions, and every error message) goes through the full checks of _checks.py."""
        if not _HAS_BATCH_OK or type(X) is not np.ndarray:
            return False
        if y is None:
            return self._engine.batch_ok(X, None, False)
        return (type(y) is np.ndarray and type(loss) is str and loss in _READY_LOSSES
                and self._engine.batch_ok(X, y, loss == "cross_entropy"))

    def _xy(self, X, y, loss, check_finite=True):
        loss = check_loss(loss)
        X = as_matrix("X", X, self.dtype, self.in_features, check_finite)
        y = as_target("y", y, X.shape[0], self.out_features, loss, self.dtype, check_finite)
        return X, y, loss

    def loss_and_grad(self, X, y, loss="mse", delta=1.0, return_input_grad=False):
        """Training-mode forward and backward on one batch: adds dL/dparam to each ``.grad``
        (call ``zero_grad()`` first, as in PyTorch) and returns the mean loss.

        With ``return_input_grad=True`` returns ``(loss, dL/dX)``.
        """
        X, y, loss = self._xy(X, y, loss)
        value, dx = self._engine.loss_and_grad(X, y, loss, check_number("delta", delta), bool(return_input_grad), True)
        return (value, dx) if return_input_grad else value

    def input_grad(self, X, y, loss="mse", delta=1.0):
        """dL/dX for one batch (parameter gradients are accumulated too)."""
        return self.loss_and_grad(X, y, loss, delta, return_input_grad=True)[1]

    def loss(self, X, y, loss="mse", delta=1.0, training=False):
        """The mean loss without gradients (inference mode unless training=True)."""
        X, y, loss = self._xy(X, y, loss)
        delta = check_number("delta", delta)
        if not training:
            return self._engine.evaluate(X, y, loss, delta, len(X), False, False)["loss"]
        grads = self._engine.grad_array()
        saved = grads.copy()  # a training-mode forward needs the backward machinery; keep .grad as it was
        try:
            return self._engine.loss_and_grad(X, y, loss, delta, False, True)[0]
        finally:
            grads[...] = saved

    def zero_grad(self):
        """Set every gradient to zero."""
        self._engine.zero_grad()

    def train_step(self, X, y, loss="mse", optimizer=None, delta=1.0, l1=0.0, l2=0.0, clip_norm=None,
                   clip_value=None):
        """One fused step in C++: zero_grad, forward, loss, backward, penalties, clipping,
        optimizer update. Returns the loss (plus penalty). A non-finite loss or gradient
        raises ``FloatingPointError`` and leaves the weights as they were."""
        if optimizer is None:
            raise TypeError("optimizer: train_step needs an optimizer, e.g. nb.optim.Adam(net)")
        optimizer._check_network(self)
        if not self._ready(X, y, loss):
            X, y, loss = self._xy(X, y, loss)
        value = self._engine.train_step(X, y, loss, check_number("delta", delta), optimizer._engine,
                                        optimizer._owned, check_number("l1", l1, 0), check_number("l2", l2, 0),
                                        _clip_arg("clip_norm", clip_norm), _clip_arg("clip_value", clip_value))
        if not math.isfinite(value):
            raise FloatingPointError(f"train_step: the loss or its gradient became NaN or infinite (loss {value}); "
                                     f"the step was skipped and the weights are unchanged (lower the learning rate "
                                     f"or clip gradients)")
        return value

    def train_steps(self, X, y, loss="mse", optimizer=None, steps=1, batch_size=None, delta=1.0, l1=0.0, l2=0.0,
                    clip_norm=None, clip_value=None):
        """``steps`` fused training steps in one call into C++, without Python in between: step s
        trains on batch s of ``batch_size`` consecutive rows of (X, y) (default: all rows, one
        batch), cycling through the batches in order (no shuffle). The weights end exactly as
        after ``train_step`` on each of those batches in turn. Returns the steps' losses (numpy
        float64). A non-finite loss stops there (that step skipped) and raises
        ``FloatingPointError``."""
        if optimizer is None:
            raise TypeError("optimizer: train_steps needs an optimizer, e.g. nb.optim.Adam(net)")
        optimizer._check_network(self)
        steps = check_int("steps", steps, 0)
        X, y, loss = self._xy(X, y, loss)
        batch_size = len(X) if batch_size is None else check_int("batch_size", batch_size)
        losses = self._engine.train_steps(X, y, loss, check_number("delta", delta), optimizer._engine,
                                          optimizer._owned, check_number("l1", l1, 0), check_number("l2", l2, 0),
                                          _clip_arg("clip_norm", clip_norm), _clip_arg("clip_value", clip_value),
                                          steps, batch_size)
        if len(losses) and not math.isfinite(losses[-1]):
            raise FloatingPointError(f"train_steps: the loss or its gradient became NaN or infinite at step "
                                     f"{len(losses) - 1} (loss {losses[-1]}); that step was skipped and training "
                                     f"stopped (lower the learning rate or clip gradients)")
        return losses

    def clip_grad_norm(self, max_norm):
        """Scale the gradients so their global L2 norm is at most max_norm; returns the norm before."""
        return self._engine.clip_grad(check_number("max_norm", max_norm, 0), 0.0)

    def clip_grad_value(self, clip_value):
        """Clamp every gradient element to [-clip_value, clip_value]."""
        self._engine.clip_grad(0.0, check_number("clip_value", clip_value, 0))

    # ----------------------------------------------------------------- copies
    def astype(self, dtype):
        """A copy of this network in another dtype, with the same parameters and state."""
        dtype = as_dtype(dtype)
        other = Sequential(self.layers, dtype=dtype, seed=self.seed, in_features=self.in_features)
        for mine, theirs in zip(self._params, other._params):
            theirs.value[...] = mine.value
            theirs.trainable = mine.trainable
        other._engine.state_array()[...] = self._engine.state_array()
        return other

    def copy(self):
        return self.astype(self.dtype)

    # ----------------------------------------------------------------- training and files (nativebp.training, .io)
    fit, evaluate, predict_proba = _training.fit, _training.evaluate, _training.predict_proba
    save, state_dict, load_state_dict = _io.save, _io.state_dict, _io.load_state_dict
    __getstate__, __setstate__, __deepcopy__ = _io.getstate, _io.setstate, _io.deepcopy

    # ----------------------------------------------------------------- summary, torch, ONNX (nativebp.summary, ...)
    def summary(self, print_fn=print):
        """Keras-style table of layers, output shapes and parameter counts: printed with
        ``print_fn`` (None: not printed) and returned as a string."""
        from .summary import summary
        return summary(self, print_fn=print_fn)

    def to_torch(self):
        """This network as a PyTorch ``nn.Sequential`` in eval mode (see ``nativebp.interop``)."""
        from .interop import to_torch
        return to_torch(self)

    def export_onnx(self, path=None, opset=17):
        """Write this network as an ONNX model to ``path`` (see ``nativebp.onnx_export``); returns it."""
        from .onnx_export import export_onnx
        return export_onnx(self, path, opset=opset)


def _clip_arg(name, value):
    if value is None:
        return 0.0
    v = check_number(name, value)
    if v <= 0:
        raise ValueError(f"{name}: expected a positive number or None, got {value!r}")
    return v
