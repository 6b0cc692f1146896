"""Optimizers with PyTorch's update rules, hyper-parameter names and defaults.

Each takes the network (or a list of its ``parameters()``) first; ``step()`` applies one fused
update in C++ over the flat parameter buffer. ``net.train_step(X, y, loss, optimizer=opt)``
does zero_grad + forward + backward + step in one call.

>>> import nativebp as nb
>>> net = nb.Sequential([nb.Dense(4, 2)])
>>> opt = nb.optim.Adam(net, lr=1e-3)
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import check_bool, check_number

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


def _resolve(params):
    from .network import Parameter, Sequential
    if isinstance(params, Sequential):
        return params, None
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params: expected a nativebp network or a list of its parameters(), got "
                        f"{type(params).__name__}") from None
    if not params or not all(isinstance(p, Parameter) for p in params):
        raise TypeError("params: expected a nativebp network or a non-empty list of its parameters()")
    if any(p._engine is not params[0]._engine for p in params):
        raise ValueError("params: all parameters must belong to one network")
    net = params[0]._net
    chosen = {p._index for p in params}
    return net, [i in chosen for i in range(len(net.parameters()))]


class Optimizer:
    """Base class: holds the engine optimizer, the network and which tensors it updates."""

    _kind = ""
    _defaults: dict = {}

    def __init__(self, params, **hyper):
        self.network, self._owned = _resolve(params)
        self.defaults = dict(self._defaults)
        for k, v in hyper.items():
            self.defaults[k] = v
        self._engine = self._make(getattr(_core, self._kind + ("32" if self.network.dtype == "float32" else "64")))

    def _make(self, cls):  # pragma: no cover - subclasses override
        raise NotImplementedError

    def _check_network(self, net):
        if net is not self.network:
            raise ValueError("optimizer: this optimizer was created for another network")

    @property
    def lr(self):
        return self._engine.lr

    @lr.setter
    def lr(self, value):
        self._engine.lr = check_number("lr", value, 0)

    def step(self):
        """Apply one update from the gradients now in the network's ``.grad`` views."""
        self.network._engine.step(self._engine, self._owned)

    def zero_grad(self):
        self.network.zero_grad()

    def state_dict(self):
        """Hyper-parameters, per-tensor step counts and moment buffers (copies)."""
        return {"kind": type(self).__name__, "defaults": dict(self.defaults, lr=self.lr),
                "steps": np.asarray(self._engine.steps, dtype=np.int64),
                "buffers": {n: self._engine.state_array(n).copy() for n in self._engine.state_names()}}

    def load_state_dict(self, state):
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"state: saved from {state.get('kind')!r}, cannot load into {type(self).__name__}")
        for name, arr in state["buffers"].items():
            dst = self._engine.state_array(name)
            if dst.shape != np.shape(arr):
                raise ValueError(f"state: buffer {name!r} has shape {np.shape(arr)}, expected {dst.shape}")
            dst[...] = arr
        self._engine.steps = [int(s) for s in state["steps"]]
        self.lr = state["defaults"]["lr"]

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in dict(self.defaults, lr=self.lr).items())
        return f"{type(self).__name__}({args})"


def _num(d, k, minimum=0.0):
    return check_number(k, d[k], minimum)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
    _kind = "SGD"
    _defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=check_bool("nesterov", nesterov))

    def _make(self, cls):
        d = self.defaults
        return cls(self.network._engine, _num(d, "lr"), _num(d, "momentum"), _num(d, "dampening"),
                   _num(d, "weight_decay"), d["nesterov"])


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011)."""
    _kind = "Adagrad"
    _defaults = {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10}

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def _make(self, cls):
        d = self.defaults
        return cls(self.network._engine, _num(d, "lr"), _num(d, "lr_decay"), _num(d, "weight_decay"),
                   _num(d, "initial_accumulator_value"), _num(d, "eps"))


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum."""
    _kind = "RMSprop"
    _defaults = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False}

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=check_bool("centered", centered))

    def _make(self, cls):
        d = self.defaults
        return cls(self.network._engine, _num(d, "lr"), _num(d, "alpha"), _num(d, "eps"), _num(d, "weight_decay"),
                   _num(d, "momentum"), d["centered"])


def _betas(betas):
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise TypeError(f"betas: expected a pair of numbers, got {betas!r}") from None
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas: expected both in [0, 1), got {betas!r}")
    return b1, b2


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with L2 ``weight_decay`` added to the gradient and ``amsgrad``."""
    _kind = "Adam"
    _decoupled = False
    _defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, lr=lr, betas=_betas(betas), eps=eps, weight_decay=weight_decay,
                         amsgrad=check_bool("amsgrad", amsgrad))

    def _make(self, cls):
        d = self.defaults
        b1, b2 = d["betas"]
        return cls(self.network._engine, _num(d, "lr"), b1, b2, _num(d, "eps"), _num(d, "weight_decay"),
                   d["amsgrad"], self._decoupled)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): weight decay applied to the weights, not the gradient."""
    _decoupled = True
    _defaults = dict(Adam._defaults, weight_decay=1e-2)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
