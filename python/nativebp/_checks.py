"""Argument checks at the boundary: every bad input becomes a ValueError/TypeError that names the
argument, what was expected and what was received, before the engine touches memory."""
from __future__ import annotations

import numbers

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(dtype):
    try:
        key = np.dtype(dtype).name
    except TypeError:
        key = None
    if key not in DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return key


def _numeric(name, a):
    if a.dtype == object:
        raise TypeError(f"{name}: expected numbers, got an array of Python objects (dtype=object)")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got complex dtype {a.dtype}")


def as_matrix(name, X, dtype, cols=None, check_finite=True):
    """A C-contiguous (n, cols) array of `dtype`; no copy when X already is one."""
    try:
        a = np.asarray(X)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array-like of numbers ({e})") from None
    _numeric(name, a)
    if a.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample)" if a.ndim == 1 else ""
        raise ValueError(f"{name}: expected a 2-D array of shape (n_samples, {cols if cols else 'n_features'}), "
                         f"got {a.ndim}-D with shape {a.shape}{hint}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name}: expected {cols} features (shape (n, {cols})), got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=DTYPES[dtype])
    if check_finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinity (pass check_finite=False to skip this check)")
    return a


def as_target(name, y, n, out, loss, dtype, check_finite=True):
    """Targets for `loss`: int64 labels (n,) for cross_entropy class labels, else (n, out) of `dtype`."""
    try:
        a = np.asarray(y)
    except Exception as e:
        raise TypeError(f"{name}: expected an array-like of numbers ({e})") from None
    _numeric(name, a)
    if a.ndim == 0:
        raise ValueError(f"{name}: expected one target per sample, got a scalar")
    if a.shape[0] != n:
        raise ValueError(f"{name}: expected {n} targets (one per row of X), got {a.shape[0]}")
    if loss == "cross_entropy" and (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and out > 1)):
        labels = a.reshape(-1)
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.isfinite(labels).all() or not np.all(labels == np.round(labels)):
                raise ValueError(f"{name}: cross_entropy class labels must be integers in [0, {out}), "
                                 f"got non-integer values")
        if labels.size and (labels.min() < 0 or labels.max() >= out):
            raise ValueError(f"{name}: cross_entropy class labels must be in [0, {out}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        return np.ascontiguousarray(labels, dtype=np.int64)
    if a.ndim == 1:
        if out != 1:
            raise ValueError(f"{name}: expected shape ({n}, {out}) for a network with {out} outputs, got {a.shape}")
        a = a.reshape(n, 1)
    if a.ndim != 2 or a.shape[1] != out:
        raise ValueError(f"{name}: expected shape ({n}, {out}), got {a.shape}")
    a = np.ascontiguousarray(a, dtype=DTYPES[dtype])
    if check_finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinity (pass check_finite=False to skip this check)")
    return a


def check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_number(name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value}")
    return float(value)


LOSSES = ("mse", "mae", "huber", "binary_cross_entropy", "cross_entropy")


def check_loss(loss):
    if loss == "bce":
        loss = "binary_cross_entropy"
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
    return loss
