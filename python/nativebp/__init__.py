"""nativebp: dense neural networks trained by backpropagation in C++ (own GEMM and thread pool, Eigen).

>>> import numpy as np, nativebp as nb
>>> net = nb.Sequential([nb.Dense(4, 16), nb.ReLU(), nb.Dense(16, 3)], seed=0)
>>> opt = nb.optim.Adam(net, lr=1e-2)
>>> X, y = np.random.rand(32, 4), np.random.randint(0, 3, 32)
>>> loss = net.train_step(X, y, loss="cross_entropy", optimizer=opt)
"""
from . import _engine  # noqa: F401  (first: it picks the engine build and makes it nativebp._core)
from . import _core, optim
from .gradcheck import GradcheckResult, gradcheck
from .layers import (ELU, GELU, SELU, BatchNorm1d, Dense, Dropout, Identity, Layer, LayerNorm, LeakyReLU, ReLU,
                     Residual, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .io import load
from .network import Parameter, Sequential
from .training import History

__version__ = "0.1.0"

__all__ = [
    "Sequential", "Parameter", "Layer", "Dense", "Identity", "ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "Sigmoid",
    "Tanh", "Softplus", "SiLU", "Softmax", "Dropout", "BatchNorm1d", "LayerNorm", "Residual", "optim", "gradcheck",
    "GradcheckResult", "set_num_threads", "get_num_threads", "build_info", "load", "History", "callbacks",
    "schedules", "io",
]


def set_num_threads(n):
    """Threads used by the engine's GEMMs and elementwise loops (process-wide; the engine's own
    pool, see nativebp/_engine.py: also NATIVEBP_NUM_THREADS / OMP_NUM_THREADS at import and
    threadpoolctl.threadpool_limits)."""
    from ._checks import check_int
    _core.set_num_threads(check_int("n", n))


def get_num_threads():
    """Threads the engine will use."""
    return _core.get_num_threads()


def build_info():
    """Eigen version, SIMD instruction sets and OpenMP version the engine was compiled with."""
    return dict(_core.build_info())


# optional-dependency functions (torch, matplotlib), imported on first use; not in __all__, so
# `from nativebp import *` never needs them
_LAZY = {"from_torch": "interop", "plot_history": "plotting"}


def __getattr__(name):  # submodules loaded on first use keep `import nativebp` fast
    import importlib
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in ("datasets", "callbacks", "schedules", "distributed"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nativebp' has no attribute {name!r}")
