"""Argument checks at the boundary: every bad input becomes a ValueError/TypeError that names the
argument, what was expected and what was received, before the engine touches memory."""
from __future__ import annotations

import math
import numbers

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}
INT64_MAX = 2**63 - 1  # the engine's sizes, counts and seeds are 64-bit


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


def _asarray(name, x):
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array-like of numbers ({e})") from None
    _numeric(name, a)
    return a


def _all_finite(a):
    """np.isfinite(a).all(), in one C++ pass without a temporary for contiguous float32/64."""
    if a.dtype in (np.float32, np.float64) and a.flags.c_contiguous and a.dtype.isnative:
        from . import _core
        if hasattr(_core, "all_finite"):
            return _core.all_finite(a)
    return bool(np.isfinite(a).all())


def _check_finite(name, a):
    """Raises naming the first NaN/inf; the source is checked before any float32 cast so that an
    overflow in the cast is told apart from bad data."""
    if np.issubdtype(a.dtype, np.floating) and not _all_finite(a):
        where = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name}: expected finite numbers, got {a[tuple(where)]} at index {tuple(int(i) for i in where)}")


def _cast(name, a, dtype, check_finite):
    """C-contiguous, aligned, native-endian array of `dtype`; no copy when `a` already is one."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.require(a, DTYPES[dtype], ["C", "A"])
    if check_finite and out is not a and np.issubdtype(out.dtype, np.floating) and not np.isfinite(out).all():
        big = float(np.abs(a.astype(np.float64)).max())
        raise ValueError(f"{name}: values up to {big:.3g} overflow {dtype} (largest {np.finfo(dtype).max:.3g}); "
                         f"rescale the data or use dtype='float64'")
    return out


def as_matrix(name, X, dtype, cols=None, check_finite=True):
    """A C-contiguous (n, cols) array of `dtype`; no copy when X already is one."""
    a = _asarray(name, X)
    if a.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample)" if a.ndim == 1 else ""
        raise ValueError(f"{name}: expected a 2-D array of shape (n_samples, {cols if cols else 'n_features'}), "
                         f"got {a.ndim}-D with shape {a.shape}{hint}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {a.shape}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name}: expected {cols} features (shape (n, {cols})), got shape {a.shape}")
    if check_finite:
        _check_finite(name, a)
    return _cast(name, a, dtype, check_finite)


def as_target(name, y, n, out, loss, dtype, check_finite=True):
    """Targets for `loss`: int64 labels (n,) for cross_entropy class labels, else (n, out) of `dtype`."""
    a = _asarray(name, y)
    if a.ndim == 0:
        raise ValueError(f"{name}: expected one target per sample, got a scalar")
    if a.shape[0] != n:
        raise ValueError(f"{name}: expected {n} targets (one per row of X), got {a.shape[0]}")
    if loss == "cross_entropy" and (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and out > 1)):
        labels = a.reshape(-1)
        if not np.issubdtype(labels.dtype, np.integer):
            bad = ~np.isfinite(labels) | (labels != np.round(labels)) if labels.dtype != np.bool_ else None
            if bad is not None and bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"{name}: cross_entropy class labels must be integers in [0, {out}), "
                                 f"got {labels[i]} at index {i}")
        if labels.min() < 0 or labels.max() >= out:
            raise ValueError(f"{name}: cross_entropy class labels must be in [0, {out}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        return np.require(labels, np.int64, ["C", "A"])
    if a.ndim == 1:
        if out != 1:
            raise ValueError(f"{name}: expected shape ({n}, {out}) for a network with {out} outputs, got {a.shape}")
        a = a.reshape(n, 1)
    if a.ndim != 2 or a.shape[1] != out:
        raise ValueError(f"{name}: expected shape ({n}, {out}), got {a.shape}")
    if check_finite:
        _check_finite(name, a)
    return _cast(name, a, dtype, check_finite)


def check_int(name, value, minimum=1, maximum=INT64_MAX):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value}")
    return int(value)


def check_number(name, value, minimum=None, maximum=None):
    """A finite real number (NaN and infinity are never meaningful hyper-parameters)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected a number <= {maximum}, got {value}")
    return float(value)


def check_bool(name, value):
    """True or False (numpy's bool too); a truthy string such as 'no' is a mistake, not a flag."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


LOSSES = ("mse", "mae", "huber", "binary_cross_entropy", "cross_entropy")


def check_loss(loss):
    if not isinstance(loss, str):
        raise TypeError(f"loss: expected a loss name ({', '.join(LOSSES)}), got {type(loss).__name__} {loss!r}")
    if loss == "bce":
        loss = "binary_cross_entropy"
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
    return loss
