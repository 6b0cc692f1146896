"""PyTorch interop: ``nb.from_torch(module)`` and ``net.to_torch()`` (needs ``torch``).

>>> import torch, nativebp as nb
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> net = nb.from_torch(model)              # same weights, same outputs
>>> back = net.to_torch()                   # an nn.Sequential again, state_dict keys unchanged

Supported modules, both ways: ``Linear``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``SELU``, ``GELU``
(``approximate='none'``), ``Sigmoid``, ``Tanh``, ``Softplus``, ``SiLU``, ``Softmax(dim=-1)``,
``Identity``, ``Dropout``, ``BatchNorm1d`` (running statistics and ``num_batches_tracked``
included), ``LayerNorm`` over the last dimension, nested ``nn.Sequential`` (flattened) and
``nativebp.interop.Residual``, the torch module for ``nb.Residual`` (``x + block(x)``; torch
has none built in). Our ``Dense`` weight is ``(in, out)``, torch's ``Linear`` weight
``(out, in)``: the conversion transposes it. Parameter names agree (``"0.weight"``,
``"4.block.0.bias"``), so ``net.state_dict()`` and ``module.state_dict()`` use the same keys.
"""
from __future__ import annotations

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("nativebp.interop needs PyTorch: pip install 'nativebp[torch]'") from e

from . import layers as L
from .network import Sequential

__all__ = ["from_torch", "to_torch", "Residual"]

_SUPPORTED = ("Linear, ReLU, LeakyReLU, ELU, SELU, GELU(approximate='none'), Sigmoid, Tanh, Softplus, SiLU, "
              "Softmax(dim=-1), Identity, Dropout, BatchNorm1d, LayerNorm, Sequential, nativebp.interop.Residual")


class Residual(nn.Module):
    """``y = x + block(x)``: the PyTorch counterpart of ``nb.Residual``."""

    def __init__(self, *layers):
        super().__init__()
        self.block = layers[0] if len(layers) == 1 and isinstance(layers[0], nn.Sequential) else nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x)


# ----------------------------------------------------------------------------- torch -> nativebp
def _flatten(module):
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _flatten(child)]
    return [module]


def _layer_from(m, where):
    """(nativebp layer, {our parameter suffix: tensor}, {our state suffix: tensor})."""
    if isinstance(m, nn.Linear):
        params = {"weight": m.weight.T} if m.bias is None else {"weight": m.weight.T, "bias": m.bias}
        return L.Dense(m.in_features, m.out_features, bias=m.bias is not None), params, {}
    if isinstance(m, nn.GELU) and m.approximate != "none":
        raise ValueError(f"{where}: GELU(approximate={m.approximate!r}) is not supported; nativebp's GELU is the "
                         f"exact one (approximate='none')")
    if isinstance(m, nn.Softmax) and m.dim not in (-1, 1):
        raise ValueError(f"{where}: Softmax(dim={m.dim!r}) is not supported; expected dim=-1 (over the features)")
    simple = {nn.ReLU: L.ReLU, nn.SELU: L.SELU, nn.GELU: L.GELU, nn.Sigmoid: L.Sigmoid, nn.Tanh: L.Tanh,
              nn.SiLU: L.SiLU, nn.Softmax: L.Softmax, nn.Identity: L.Identity}
    if type(m) in simple:
        return simple[type(m)](), {}, {}
    if isinstance(m, nn.LeakyReLU):
        return L.LeakyReLU(m.negative_slope), {}, {}
    if isinstance(m, nn.ELU):
        return L.ELU(m.alpha), {}, {}
    if isinstance(m, nn.Softplus):
        return L.Softplus(m.beta, m.threshold), {}, {}
    if isinstance(m, nn.Dropout):
        return L.Dropout(m.p), {}, {}
    if isinstance(m, nn.BatchNorm1d):
        if m.momentum is None or not m.track_running_stats:
            raise ValueError(f"{where}: BatchNorm1d needs track_running_stats=True and a float momentum "
                             f"(cumulative averaging, momentum=None, is not supported)")
        params = {"weight": m.weight, "bias": m.bias} if m.affine else {}
        states = {"running_mean": m.running_mean, "running_var": m.running_var,
                  "num_batches_tracked": m.num_batches_tracked}
        return L.BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine), params, states
    if isinstance(m, nn.LayerNorm):
        if len(m.normalized_shape) != 1:
            raise ValueError(f"{where}: LayerNorm over shape {tuple(m.normalized_shape)} is not supported; "
                             f"expected one dimension (the features)")
        if m.elementwise_affine and m.bias is None:
            raise ValueError(f"{where}: LayerNorm(bias=False) is not supported; nativebp's affine LayerNorm has both "
                             f"weight and bias")
        params = {"weight": m.weight, "bias": m.bias} if m.elementwise_affine else {}
        return L.LayerNorm(m.normalized_shape[0], eps=m.eps, elementwise_affine=m.elementwise_affine), params, {}
    if isinstance(m, Residual):
        inner, params, states = _layers_from(_flatten(m.block), f"{where}.block")
        return L.Residual(inner), {f"block.{k}": v for k, v in params.items()}, \
            {f"block.{k}": v for k, v in states.items()}
    raise TypeError(f"{where}: cannot convert torch module {type(m).__name__}; supported: {_SUPPORTED}")


def _layers_from(modules, where):
    out, params, states = [], {}, {}
    for i, m in enumerate(modules):
        layer, p, s = _layer_from(m, f"{where}[{i}]")
        out.append(layer)
        params.update({f"{i}.{k}": v for k, v in p.items()})
        states.update({f"{i}.{k}": v for k, v in s.items()})
    return out, params, states


def from_torch(module, dtype=None, seed=0, in_features=None):
    """A ``nb.Sequential`` with the layers, parameters and BatchNorm statistics of ``module``.

    ``module``: an ``nn.Sequential`` (or one supported module). ``dtype`` defaults to float64 when
    the module's parameters are float64, else float32. ``in_features`` is needed only when no
    layer tells it (a network of activations only). Trainable flags follow ``requires_grad``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module (e.g. nn.Sequential), got {type(module).__name__}")
    layers, params, states = _layers_from(_flatten(module), "module")
    if dtype is None:
        first = next(iter(params.values()), None)
        dtype = "float64" if first is not None and first.dtype == torch.float64 else "float32"
    net = Sequential(layers, dtype=dtype, seed=seed, in_features=in_features)
    ours = dict(net.named_parameters())
    if set(ours) != set(params):  # a mismatch is a bug in this module, not a user error
        raise RuntimeError(f"from_torch: parameter names differ: {sorted(set(ours) ^ set(params))}")
    for name, t in params.items():
        ours[name].value[...] = t.detach().cpu().numpy()
        ours[name].trainable = bool(t.requires_grad)
    buffers = net.buffers()
    for name, t in states.items():
        buffers[name][...] = t.detach().cpu().numpy().reshape(-1)
    return net


# ----------------------------------------------------------------------------- nativebp -> torch
def _module_for(layer):
    simple = {L.ReLU: nn.ReLU, L.SELU: nn.SELU, L.GELU: nn.GELU, L.Sigmoid: nn.Sigmoid, L.Tanh: nn.Tanh,
              L.SiLU: nn.SiLU, L.Identity: nn.Identity}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, L.Dense):
        return nn.Linear(layer.in_features, layer.out_features_, bias=layer.bias)
    if isinstance(layer, L.Softmax):
        return nn.Softmax(dim=-1)
    if isinstance(layer, L.LeakyReLU):
        return nn.LeakyReLU(layer.alpha)
    if isinstance(layer, L.ELU):
        return nn.ELU(layer.alpha)
    if isinstance(layer, L.Softplus):
        return nn.Softplus(layer.beta, layer.threshold)
    if isinstance(layer, L.Dropout):
        return nn.Dropout(layer.p)
    if isinstance(layer, L.BatchNorm1d):
        return nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine)
    if isinstance(layer, L.LayerNorm):
        return nn.LayerNorm(layer.num_features, eps=layer.eps, elementwise_affine=layer.elementwise_affine)
    if isinstance(layer, L.Residual):
        return Residual(nn.Sequential(*[_module_for(inner) for inner in layer.layers]))
    raise TypeError(f"to_torch: no torch module for {type(layer).__name__}")


def to_torch(net):
    """An ``nn.Sequential`` (in eval mode, the network's dtype) computing what ``net.forward`` does,
    with the same parameters, BatchNorm statistics and state_dict keys."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a nativebp Sequential, got {type(net).__name__}")
    model = nn.Sequential(*[_module_for(layer) for layer in net.layers])
    model.to(torch.float64 if net.dtype == "float64" else torch.float32)
    sd = model.state_dict()
    with torch.no_grad():
        for p in net.parameters():
            value = p.value.T if p.value.ndim == 2 else p.value  # Dense (in, out) -> Linear (out, in)
            sd[p.name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
        for name, value in net.buffers().items():
            sd[name].copy_(torch.from_numpy(value.copy()).reshape(sd[name].shape).to(sd[name].dtype))
    for p in net.parameters():
        model.get_parameter(p.name).requires_grad_(p.trainable)
    return model.eval()
