"""Finite-difference gradient check: the analytic gradients of every parameter and of the input
against 4-point central differences, in float64."""
from __future__ import annotations

from dataclasses import dataclass, field

from ._checks import check_int

__all__ = ["gradcheck", "GradcheckResult"]


@dataclass
class GradcheckResult:
    """``max_error``: the largest relative error over everything checked; ``worst``: where.
    ``per_tensor``: name -> (max relative error, elements checked)."""
    max_error: float
    worst: str
    per_tensor: dict = field(default_factory=dict)

    def __float__(self):
        return float(self.max_error)

    def __repr__(self):
        return f"GradcheckResult(max_error={self.max_error:.3g}, worst={self.worst!r})"


def gradcheck(net, X, y, loss="mse", delta=1.0, max_checks=None, seed=0, training=True):
    """Compare every analytic gradient with central finite differences; returns a GradcheckResult.

    A float32 network is checked through a float64 copy, so the result measures the gradient
    formulas, not float32 rounding. Each element's error is ``|a - n| / max(|a|, |n|, floor)``
    with ``floor`` 1% of the tensor's largest gradient. Dropout masks are held fixed and running
    statistics restored. ``max_checks`` samples that many elements per tensor (default: all).

    >>> import numpy as np, nativebp as nb
    >>> net = nb.Sequential([nb.Dense(3, 4), nb.Tanh(), nb.Dense(4, 2)], dtype="float64")
    >>> r = nb.gradcheck(net, np.random.rand(5, 3), np.random.rand(5, 2))
    >>> r.max_error < 1e-6
    True
    """
    net64 = net if net.dtype == "float64" else net.astype("float64")
    X, y, loss = net64._xy(X, y, loss)
    max_checks = 0 if max_checks is None else check_int("max_checks", max_checks)
    entries = net64._engine.gradcheck(X, y, loss, float(delta), max_checks, check_int("seed", seed, 0),
                                      bool(training))
    worst = max(entries, key=lambda e: e["max_error"])
    return GradcheckResult(worst["max_error"], worst["name"],
                           {e["name"]: (e["max_error"], e["checked"]) for e in entries})
