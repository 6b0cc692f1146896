"""Property-based tests (hypothesis) over random architectures, dtypes, shapes and bad values: each
call either returns the correct result or raises one of the documented exceptions
(ValueError, TypeError, MemoryError; FloatingPointError for a diverging step).

- forward equals a numpy reimplementation that reads the parameter and buffer views;
- float64 gradients agree with central differences (nb.gradcheck) on smooth architectures;
- mutated inputs (shapes, dtypes, layouts, NaN/inf, labels, loss names) either raise a documented
  exception or give exactly what the same data as a clean C array of the network's dtype gives;
- random layer specs and optimizer arguments sent straight to nativebp._core never crash.

Example counts are fixed (``EXAMPLES``) and the runs derandomized, so CI time is bounded and a
failure reproduces; raise them locally with NATIVEBP_HYPOTHESIS_SCALE=10.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nativebp as nb
from nativebp import _core

SCALE = float(os.environ.get("NATIVEBP_HYPOTHESIS_SCALE", "1"))
EXAMPLES = {"forward": 300, "gradcheck": 150, "mutations": 600, "core_specs": 500, "optimizers": 200}


def bounded(name):
    return settings(max_examples=int(EXAMPLES[name] * SCALE), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DOCUMENTED = (ValueError, TypeError, MemoryError)
SMOOTH = ["identity", "tanh", "sigmoid", "gelu", "silu", "softplus", "softmax"]
KINKED = ["relu", "leaky_relu", "elu", "selu"]


# ------------------------------------------------------------------------------ architectures
@st.composite
def blocks(draw, width, smooth, depth):
    """A list of layers taking `width` features; returns (layers, output width)."""
    layers = []
    kinds = SMOOTH + ["dense", "dense", "layernorm", "batchnorm", "dropout"] + ([] if smooth else KINKED)
    if depth < 1:
        kinds.append("residual")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "dense":
            out = draw(st.integers(1, 6))
            layers.append(nb.Dense(width, out, bias=draw(st.booleans()),
                                   init=draw(st.sampled_from(["xavier_uniform", "he_normal", "normal"]))))
            width = out
        elif kind == "layernorm":
            layers.append(nb.LayerNorm(width, eps=draw(st.sampled_from([1e-5, 1e-3])),
                                       elementwise_affine=draw(st.booleans())))
        elif kind == "batchnorm":
            layers.append(nb.BatchNorm1d(width, momentum=draw(st.sampled_from([0.1, 0.5])),
                                         affine=draw(st.booleans())))
        elif kind == "dropout":
            layers.append(nb.Dropout(draw(st.sampled_from([0.0, 0.3]))))
        elif kind == "residual":
            inner, w = draw(blocks(width, smooth, depth + 1))
            layers.append(nb.Residual(inner + ([nb.Dense(w, width)] if w != width else [])))
        elif kind == "leaky_relu":
            layers.append(nb.LeakyReLU(draw(st.sampled_from([0.01, 0.3]))))
        elif kind == "elu":
            layers.append(nb.ELU(draw(st.sampled_from([1.0, 0.5]))))
        elif kind == "softplus":
            layers.append(nb.Softplus(beta=draw(st.sampled_from([1.0, 2.0])), threshold=draw(st.sampled_from([20.0, 1.0]))))
        else:
            layers.append(nb.layers.make_layer(kind))
    return layers, width


@st.composite
def networks(draw, smooth=False, dtypes=("float32", "float64")):
    """A Sequential with random (seeded) non-zero biases, affine parameters and running statistics."""
    width = draw(st.integers(1, 5))
    body, w = draw(blocks(width, smooth, 0))
    out = draw(st.integers(1, 4))
    net = nb.Sequential(body + [nb.Dense(w, out)], dtype=draw(st.sampled_from(dtypes)),
                        seed=draw(st.integers(0, 2**32)), in_features=width)
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    for p in net.parameters():
        if p.value.ndim == 1:  # biases, norm scales and shifts
            p.value[...] = rng.uniform(0.5, 1.5, p.value.shape) if p.name.endswith("weight") else rng.normal(0, 0.5, p.value.shape)
    for name, b in net.buffers().items():
        if name.endswith("running_mean"):
            b[...] = rng.normal(0, 1, b.shape)
        elif name.endswith("running_var"):
            b[...] = rng.uniform(0.2, 3, b.shape)
    return net


# ------------------------------------------------------------------------------ numpy reference
_erf = np.vectorize(math.erf)


def _activation(layer, x):
    k = layer.kind
    if k == "identity":
        return x
    if k == "relu":
        return np.maximum(x, 0)
    if k == "leaky_relu":
        return np.where(x > 0, x, layer.alpha * x)
    if k == "elu":
        return np.where(x > 0, x, layer.alpha * np.expm1(np.minimum(x, 0)))
    if k == "selu":
        a, s = 1.6732632423543772, 1.0507009873554805
        return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    if k == "gelu":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if k == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if k == "tanh":
        return np.tanh(x)
    if k == "softplus":
        bx = layer.beta * x
        return np.where(bx > layer.threshold, x, np.logaddexp(0, bx) / layer.beta)
    if k == "silu":
        return x / (1 + np.exp(-x))
    if k == "softmax":
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    raise AssertionError(k)


def reference_forward(layers, x, params, buffers):
    """Inference-mode forward in float64, consuming parameter and buffer views in layer order."""
    for layer in layers:
        if isinstance(layer, nb.Dense):
            x = x @ next(params)
            if layer.bias:
                x = x + next(params)
        elif isinstance(layer, nb.BatchNorm1d):
            mean, var = next(buffers), next(buffers)
            next(buffers)  # num_batches_tracked
            x = (x - mean) / np.sqrt(var + layer.eps)
            if layer.affine:
                x = x * next(params) + next(params)
        elif isinstance(layer, nb.LayerNorm):
            x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + layer.eps)
            if layer.elementwise_affine:
                x = x * next(params) + next(params)
        elif isinstance(layer, nb.Residual):
            x = x + reference_forward(layer.layers, x, params, buffers)
        elif isinstance(layer, nb.Dropout):
            pass
        else:
            x = _activation(layer, x)
    return x


@bounded("forward")
@given(net=networks(), n=st.integers(1, 7), seed=st.integers(0, 2**32))
def test_forward_matches_a_numpy_reimplementation_from_the_parameter_views(net, n, seed):
    X = np.random.default_rng(seed).normal(0, 1.5, (n, net.in_features))
    params = iter([p.value.astype(np.float64) for p in net.parameters()])
    buffers = iter([b.astype(np.float64) for b in net.buffers().values()])
    ref = reference_forward(net.layers, X.astype(net.dtype).astype(np.float64), params, buffers)
    out = net.forward(X)
    assert out.shape == (n, net.out_features) and out.dtype == net.dtype
    tol = 1e-9 if net.dtype == "float64" else 2e-3  # float32: LayerNorm on near-equal features amplifies rounding
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * (1 + np.abs(ref).max()))


# ------------------------------------------------------------------------------ gradients
@bounded("gradcheck")
@given(net=networks(smooth=True, dtypes=("float64",)), n=st.integers(3, 6), seed=st.integers(0, 2**32),
       loss=st.sampled_from(["mse", "cross_entropy", "binary_cross_entropy", "huber"]))
def test_float64_gradients_match_central_differences(net, n, seed, loss):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, net.in_features))
    k = net.out_features
    y = rng.integers(0, k, n) if loss == "cross_entropy" else (
        rng.uniform(0, 1, (n, k)) if loss == "binary_cross_entropy" else rng.normal(0, 1, (n, k)))
    r = nb.gradcheck(net, X, y, loss=loss)
    assert r.max_error < 1e-5, f"{r} {r.per_tensor}"


# ------------------------------------------------------------------------------ mutated inputs
def _bad_dtype_array(draw, X):
    kind = draw(st.sampled_from(["float16", "int8", "int64", "uint16", "bool", "complex64", "object", "str",
                                 "datetime64[s]"]))
    if kind == "object":
        return X.astype(object)
    if kind == "str":
        return X.astype(str)
    return X.astype(kind)


@st.composite
def mutated_X(draw, n, width, dtype):
    X = draw(st.sampled_from([np.linspace(-2, 2, n * width).reshape(n, width), np.zeros((n, width))]))
    m = draw(st.sampled_from(["none", "cols", "rows0", "ndim1", "ndim3", "scalar", "nan", "inf", "huge", "dtype",
                              "fortran", "strided", "list", "readonly", "none_value", "ready"]))
    if m == "cols":
        return np.zeros((n, width + draw(st.sampled_from([-width, -1, 1, 5]))))
    if m == "rows0":
        return np.zeros((0, width))
    if m == "ndim1":
        return X.reshape(-1)
    if m == "ndim3":
        return X[..., None]
    if m == "scalar":
        return 1.5
    if m in ("nan", "inf", "huge"):
        X = X.copy()
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, width - 1))] = {"nan": np.nan, "inf": -np.inf,
                                                                          "huge": 1e300}[m]
        return X if m == "huge" or draw(st.booleans()) else X.astype(dtype)
    if m == "dtype":
        return _bad_dtype_array(draw, X)
    if m == "fortran":
        return np.asfortranarray(X)
    if m == "strided":
        return np.repeat(X, 3, axis=1)[:, ::3]
    if m == "list":
        return X.tolist()
    if m == "readonly":
        X = X.copy()
        X.setflags(write=False)
        return X
    if m == "none_value":
        return None
    if m == "ready" or draw(st.booleans()):  # the engine's own layout: takes the C++ fast path
        return np.ascontiguousarray(X, dtype=dtype)
    return X


@st.composite
def mutated_y(draw, n, out, loss, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    good = rng.integers(0, out, n) if loss == "cross_entropy" else rng.normal(0, 1, (n, out))
    m = draw(st.sampled_from(["none", "length", "range", "negative", "fraction", "nan", "inf", "shape", "dtype",
                              "onehot", "column", "list", "float_labels", "scalar"]))
    if m == "length":
        return good[: max(0, n - draw(st.integers(1, n)))] if draw(st.booleans()) else np.concatenate([good, good])
    if m == "range":
        return np.full(n, out + draw(st.integers(0, 2**40)))
    if m == "negative":
        return np.full(n, -1)
    if m == "fraction":
        return good + 0.5
    if m in ("nan", "inf"):
        bad = good.astype(np.float64)
        bad.flat[0] = np.nan if m == "nan" else np.inf
        return bad
    if m == "shape":
        return np.zeros((n, out + 1))
    if m == "dtype":
        return _bad_dtype_array(draw, np.asarray(good))
    if m == "onehot":
        return np.eye(out)[rng.integers(0, out, n)]
    if m == "column":
        return np.asarray(good).reshape(n, -1)[:, :1]
    if m == "list":
        return np.asarray(good).tolist()
    if m == "float_labels":
        return np.asarray(good, dtype=np.float64)
    if m == "scalar":
        return 0
    if draw(st.booleans()):  # the engine's own layout: takes the C++ fast path
        return np.ascontiguousarray(good, dtype=np.int64 if loss == "cross_entropy" else dtype)
    return good


def _canonical(a, dtype):
    return np.array(a, dtype=dtype, order="C")


@bounded("mutations")
@given(data=st.data(), n=st.integers(1, 6), width=st.integers(1, 4), out=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]),
       loss=st.sampled_from(["mse", "cross_entropy", "huber", "binary_cross_entropy", "mae", "hinge", 3, None]),
       method=st.sampled_from(["forward", "predict", "loss_and_grad", "loss", "train_step"]))
def test_mutated_inputs_raise_documented_errors_or_match_the_clean_input(data, n, width, out, dtype, loss, method):
    layers = [nb.Dense(width, 4), nb.Tanh(), nb.Dense(4, out)]
    net, twin = nb.Sequential(layers, dtype=dtype, seed=1), nb.Sequential(layers, dtype=dtype, seed=1)
    X = data.draw(mutated_X(n, width, dtype))
    y = data.draw(mutated_y(n, out, loss if isinstance(loss, str) else "mse", dtype))

    def call(net, X, y):
        """The results as a list of arrays."""
        if method == "forward":
            return [net.forward(X)]
        if method == "predict":
            return [net.predict(X, batch_size=2)]
        if method == "loss_and_grad":
            net.zero_grad()
            return [net.loss_and_grad(X, y, loss=loss)] + [p.grad.copy() for p in net.parameters()]
        if method == "loss":
            return [net.loss(X, y, loss=loss)]
        net.train_step(X, y, loss=loss, optimizer=nb.optim.SGD(net, lr=0.1))
        return [p.value.copy() for p in net.parameters()]

    try:
        got = call(net, X, y)
    except DOCUMENTED as e:
        event(f"raised {type(e).__name__}")
        return
    except FloatingPointError:
        assert method == "train_step"
        event("raised FloatingPointError")
        return
    event("computed")
    y_clean = np.asarray(y)
    if loss == "cross_entropy" and (y_clean.ndim == 1 or y_clean.shape[1:] == (1,)) and out > 1:
        y_clean = _canonical(y_clean.reshape(-1), np.int64)
    elif y_clean.dtype.kind in "fiub":
        y_clean = _canonical(y_clean, dtype)
    want = call(twin, _canonical(X, dtype), y_clean)
    # bit-equal: the engine's buffers are aligned alike, so only the values passed can matter
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------ raw engine
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 6), st.sampled_from([2**40, 2**62, 2**64, -2**63]),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                   st.sampled_from(["zeros", "he_normal", "uniform"]), st.lists(st.integers(), max_size=2))
VALID = {  # one valid spec per layer type, all 3 wide so that they chain; mutations start from these
    "dense": dict(in_features=3, out_features=3, bias=True, init="he_normal", init_arg=0.1, bias_init="zeros"),
    "leaky_relu": dict(alpha=0.1), "elu": dict(alpha=1.0), "softplus": dict(beta=1.0, threshold=20.0),
    "dropout": dict(p=0.5), "batchnorm1d": dict(num_features=3, eps=1e-5, momentum=0.1, affine=True),
    "layernorm": dict(num_features=3, eps=1e-5, affine=False),
    **{k: {} for k in ["identity", "relu", "selu", "gelu", "sigmoid", "tanh", "silu", "softmax"]},
}


def mostly(good, bad, tenths_bad=1):
    """`good`, and `bad` one time in ten (one_of would flatten `bad`'s many branches and pick it mostly)."""
    return st.integers(0, 9).flatmap(lambda i: bad if i < tenths_bad else good)


@st.composite
def raw_specs(draw, depth=0):
    """A valid spec of a random type (a residual holds more), then (in three cases out of seven) up
    to three keys deleted, replaced by arbitrary values or added."""
    kind = draw(st.sampled_from(sorted(VALID) + ["residual"] * (depth < 1)))
    spec = {"type": kind, **VALID.get(kind, {})}
    if kind == "residual":
        spec["layers"] = draw(st.lists(raw_specs(depth + 1), max_size=2))
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3]))):  # most specs stay valid, so networks get built
        key = draw(st.sampled_from(sorted(spec) + ["extra"]))
        if draw(st.booleans()) and key in spec:
            del spec[key]
        else:
            spec[key] = draw(VALUES)
    return spec


@bounded("core_specs")
@given(specs=mostly(st.lists(raw_specs(), min_size=1, max_size=3), VALUES), in_features=mostly(st.sampled_from([3, 3, 3, 1, 4]), VALUES),
       seed=mostly(st.integers(0, 2**64 - 1), VALUES),
       dtype=st.sampled_from([32, 64]))
def test_random_specs_sent_to_the_raw_engine_never_crash(specs, in_features, seed, dtype):
    try:
        engine = getattr(_core, f"Network{dtype}")(specs, in_features, seed)
    except DOCUMENTED as e:
        event(f"raised {type(e).__name__}")
        return
    event(f"built a network of {len(specs)} layers")
    if engine.in_features > 64:  # legal (nothing is allocated per feature until data arrives); no data to send
        return
    X = np.linspace(-1, 1, 3 * engine.in_features).reshape(3, -1).astype(np.float32 if dtype == 32 else np.float64)
    assert engine.forward(X, True).shape == (3, engine.out_features)


HYPER = st.one_of(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True),
                  st.integers(-2, 2), st.none(), st.text(max_size=2), st.booleans(),
                  st.tuples(st.floats(0, 1), st.floats(0, 1)))


@st.composite
def optimizer_arguments(draw):
    """An optimizer class and keyword arguments from its own signature (now and then a foreign
    one), each value valid or not."""
    import inspect
    cls = getattr(nb.optim, draw(st.sampled_from(["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])))
    own = [k for k in inspect.signature(cls).parameters if k != "params"]
    keys = draw(st.lists(st.sampled_from(own + ["nesterov", "amsgrad"] * (draw(st.integers(0, 9)) == 0)),
                         max_size=4, unique=True))
    return cls, {k: draw(HYPER) for k in keys}


@bounded("optimizers")
@given(args=optimizer_arguments())
def test_random_optimizer_arguments_raise_documented_errors_or_train(args):
    cls, kwargs = args
    net = nb.Sequential([nb.Dense(3, 4), nb.ReLU(), nb.Dense(4, 2)], seed=0)
    try:
        opt = cls(net, **kwargs)
    except DOCUMENTED as e:
        event(f"raised {type(e).__name__}")
        return
    X, y = np.linspace(-1, 1, 15).reshape(5, 3), np.array([0, 1, 1, 0, 1])
    try:
        loss = net.train_step(X, y, loss="cross_entropy", optimizer=opt)
    except FloatingPointError:
        event("diverged: FloatingPointError")
        return
    event("trained")
    assert np.isfinite(loss)

