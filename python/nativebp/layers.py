"""Layer descriptions: each class records its hyper-parameters; the engine builds the real layer.

Names, defaults and conventions follow PyTorch (``torch.nn``), so numbers compare one to one.
Every layer also has a lower-case string name (``"relu"``, ``"tanh"``, ...) accepted wherever a
list of layers is.
"""
from __future__ import annotations

import numbers

__all__ = [
    "Layer", "Dense", "Identity", "ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "Sigmoid", "Tanh",
    "Softplus", "SiLU", "Softmax", "Dropout", "BatchNorm1d", "LayerNorm", "Residual", "make_layer",
    "layer_from_config", "INITIALIZERS",
]

INITIALIZERS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal",
                "lecun_uniform", "uniform", "normal", "zeros")


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def _check_float(name, value, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    v = float(value)
    bad = v != v or (lo is not None and (v <= lo if lo_open else v < lo)) or \
        (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        raise ValueError(f"{name}: expected a number {' and '.join(s for s in (lo_s, hi_s) if s)}, got {value!r}")
    return v


class Layer:
    """Base of all layer descriptions. ``spec(in_features)`` returns the engine's description."""

    #: the lower-case name used in the engine and in string layer lists
    kind = ""

    def spec(self, in_features):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def out_features(self, in_features):
        return in_features

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def _args(self):
        return {}

    def config(self):
        """JSON-serialisable description ``{"class": name, **constructor arguments}``; see
        ``layer_from_config``."""
        return {"class": type(self).__name__, **self._args()}

    def __eq__(self, other):
        return type(self) is type(other) and self._args() == other._args()

    def __hash__(self):
        return hash((type(self).__name__, tuple(self._args().items())))


class Dense(Layer):
    """Fully connected layer ``y = x @ W + b`` with ``W`` of shape ``(in_features, out_features)``.

    ``init`` is one of ``INITIALIZERS`` (``init_arg`` is the bound of ``"uniform"`` and the
    standard deviation of ``"normal"``); biases start at zero unless ``bias_init`` says otherwise.

    >>> import nativebp as nb
    >>> nb.Dense(4, 3, init="he_uniform")
    Dense(in_features=4, out_features=3, bias=True, init='he_uniform')
    """

    kind = "dense"

    def __init__(self, in_features, out_features, bias=True, init="xavier_uniform", init_arg=0.1,
                 bias_init="zeros"):
        self.in_features = _check_int("in_features", in_features)
        self.out_features_ = _check_int("out_features", out_features)
        if not isinstance(bias, bool):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        for name, v in (("init", init), ("bias_init", bias_init)):
            if v not in INITIALIZERS:
                raise ValueError(f"{name}: expected one of {', '.join(INITIALIZERS)}, got {v!r}")
        self.bias, self.init, self.bias_init = bias, init, bias_init
        self.init_arg = _check_float("init_arg", init_arg, lo=0)

    def _args(self):
        a = {"in_features": self.in_features, "out_features": self.out_features_, "bias": self.bias,
             "init": self.init}
        if self.init in ("uniform", "normal"):
            a["init_arg"] = self.init_arg
        if self.bias_init != "zeros":
            a["bias_init"] = self.bias_init
        return a

    def out_features(self, in_features):
        return self.out_features_

    def config(self):
        return {"class": "Dense", "in_features": self.in_features, "out_features": self.out_features_,
                "bias": self.bias, "init": self.init, "init_arg": self.init_arg, "bias_init": self.bias_init}

    def spec(self, in_features):
        return {"type": "dense", "in_features": self.in_features, "out_features": self.out_features_,
                "bias": self.bias, "init": self.init, "init_arg": self.init_arg, "bias_init": self.bias_init}


class _Activation(Layer):
    def spec(self, in_features):
        return {"type": self.kind, **self._args()}


class Identity(_Activation):
    """``y = x``."""
    kind = "identity"


class ReLU(_Activation):
    """``y = max(x, 0)``."""
    kind = "relu"


class _ScaledNegative(_Activation):
    """An activation with one argument ``alpha >= 0`` that scales its negative side."""

    def __init__(self, alpha):
        self.alpha = _check_float("alpha", alpha, lo=0)

    def _args(self):
        return {"alpha": self.alpha}


class LeakyReLU(_ScaledNegative):
    """``y = x if x > 0 else alpha * x`` (torch's ``negative_slope``)."""
    kind = "leaky_relu"

    def __init__(self, alpha=0.01):
        super().__init__(alpha)


class ELU(_ScaledNegative):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``."""
    kind = "elu"

    def __init__(self, alpha=1.0):
        super().__init__(alpha)


class SELU(_Activation):
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""
    kind = "selu"


class GELU(_Activation):
    """Exact GELU ``y = x * Phi(x)`` with the normal CDF (torch's ``approximate='none'``)."""
    kind = "gelu"


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``."""
    kind = "sigmoid"


class Tanh(_Activation):
    """``y = tanh(x)``."""
    kind = "tanh"


class Softplus(_Activation):
    """``y = log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (as torch)."""
    kind = "softplus"

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta = _check_float("beta", beta, lo=0, lo_open=True)
        self.threshold = _check_float("threshold", threshold)

    def _args(self):
        return {"beta": self.beta, "threshold": self.threshold}


class SiLU(_Activation):
    """``y = x * sigmoid(x)`` (also called swish)."""
    kind = "silu"


class Softmax(_Activation):
    """Row-wise softmax over the features. For classification prefer logits with
    ``loss="cross_entropy"``, which fuses softmax and log-likelihood stably."""
    kind = "softmax"


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest
    by ``1 / (1 - p)``; identity in inference. Masks come from the network's seeded generator."""
    kind = "dropout"

    def __init__(self, p=0.5):
        self.p = _check_float("p", p, lo=0, hi=1, hi_open=True)

    def _args(self):
        return {"p": self.p}

    def spec(self, in_features):
        return {"type": "dropout", "p": self.p}


class BatchNorm1d(Layer):
    """Batch normalisation over features, as ``torch.nn.BatchNorm1d``: batch statistics in
    training, running statistics in inference; ``momentum`` weights the new batch statistic and
    the running variance is the unbiased one."""
    kind = "batchnorm1d"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        self.num_features = _check_int("num_features", num_features)
        self.eps = _check_float("eps", eps, lo=0, lo_open=True)
        self.momentum = _check_float("momentum", momentum, lo=0, hi=1)
        if not isinstance(affine, bool):
            raise TypeError(f"affine: expected True or False, got {affine!r}")
        self.affine = affine

    def _args(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine}

    def spec(self, in_features):
        return {"type": "batchnorm1d", **self._args()}


class LayerNorm(Layer):
    """Normalisation over the features of each sample, as ``torch.nn.LayerNorm(num_features)``."""
    kind = "layernorm"

    def __init__(self, num_features, eps=1e-5, elementwise_affine=True):
        self.num_features = _check_int("num_features", num_features)
        self.eps = _check_float("eps", eps, lo=0, lo_open=True)
        if not isinstance(elementwise_affine, bool):
            raise TypeError(f"elementwise_affine: expected True or False, got {elementwise_affine!r}")
        self.elementwise_affine = elementwise_affine

    def _args(self):
        return {"num_features": self.num_features, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine}

    def spec(self, in_features):
        return {"type": "layernorm", "num_features": self.num_features, "eps": self.eps,
                "affine": self.elementwise_affine}


class Residual(Layer):
    """Skip connection ``y = x + f(x)`` around a list of layers (or a ``Sequential``) ``f`` whose
    output width equals its input width.

    >>> import nativebp as nb
    >>> block = nb.Residual([nb.Dense(8, 8), nb.ReLU(), nb.Dense(8, 8)])
    """
    kind = "residual"

    def __init__(self, layers):
        from .network import Sequential  # a Sequential is accepted as the block
        if isinstance(layers, Sequential):
            layers = layers.layers
        if isinstance(layers, (Layer, str)):
            layers = [layers]
        try:
            self.layers = [make_layer(l) for l in layers]
        except TypeError as e:
            raise TypeError(f"layers: expected a list of layers or a Sequential ({e})") from None

    def _args(self):
        return {"layers": self.layers}

    def config(self):
        return {"class": "Residual", "layers": [layer.config() for layer in self.layers]}

    def out_features(self, in_features):
        return in_features

    def spec(self, in_features):
        specs, width = [], in_features
        for layer in self.layers:
            specs.append(layer.spec(width))
            width = layer.out_features(width)
        return {"type": "residual", "layers": specs}


_BY_NAME = {cls.kind: cls for cls in (Identity, ReLU, LeakyReLU, ELU, SELU, GELU, Sigmoid, Tanh, Softplus,
                                      SiLU, Softmax)}
_BY_NAME.update({"swish": SiLU, "logistic": Sigmoid, "linear": Identity})


_BY_CLASS = {cls.__name__: cls for cls in (Dense, Identity, ReLU, LeakyReLU, ELU, SELU, GELU, Sigmoid, Tanh,
                                           Softplus, SiLU, Softmax, Dropout, BatchNorm1d, LayerNorm, Residual)}


def layer_from_config(config):
    """The layer a ``Layer.config()`` dict describes (the inverse of ``config()``).

    >>> import nativebp as nb
    >>> nb.layers.layer_from_config(nb.LeakyReLU(0.2).config())
    LeakyReLU(alpha=0.2)
    """
    if not isinstance(config, dict) or config.get("class") not in _BY_CLASS:
        raise ValueError(f"config: expected a dict with 'class' one of {', '.join(_BY_CLASS)}, got {config!r}")
    args = {k: v for k, v in config.items() if k != "class"}
    if config["class"] == "Residual":
        args["layers"] = [layer_from_config(c) for c in args.get("layers", ())]
    try:
        return _BY_CLASS[config["class"]](**args)
    except TypeError as e:
        raise ValueError(f"config: bad arguments for {config['class']} ({e})") from None


def make_layer(layer):
    """A layer instance from a layer or an activation's lower-case name (``"relu"``)."""
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, str):
        try:
            return _BY_NAME[layer.lower()]()
        except KeyError:
            raise ValueError(f"unknown activation name {layer!r}; expected one of {', '.join(sorted(_BY_NAME))}") \
                from None
    raise TypeError(f"expected a nativebp layer or an activation name, got {type(layer).__name__}")
