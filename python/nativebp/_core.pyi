"""Type stubs for ``nativebp._core``, the compiled engine (pybind11). Private: use ``nativebp``.

Every class exists twice, ``...32`` for float32 and ``...64`` for float64, with the same
methods: declared once here, generic in the dtype (``_Network[_F]``, ...). Arrays must be C-contiguous and of the class's dtype (the Python face converts).
Keep in sync with ``cpp/bindings/*.cpp``; ``tests/test_typing.py`` compares names with the
built module.
"""
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

LayerSpec = dict[str, Any]  # {"type": "dense", "in_features": ..., ...}: see nativebp.layers.Layer.spec
Target = Union[NDArray[np.int64], NDArray[Any]]  # int64 class labels (n,) or an (n, out) array
Totals = dict[str, Any]  # loss, samples, batches, diverged [, accuracy] [, mse, mae]
_F = TypeVar("_F", np.float32, np.float64)  # the dtype of a ...32 / ...64 class

class EngineValueError(ValueError):
    """A bad argument detected in C++."""

def set_num_threads(n: int) -> None:
    """Threads of the engine's pool, for its GEMMs and elementwise loops (process-wide)."""

def get_num_threads() -> int: ...
def set_spin_us(us: int) -> None:
    """How long idle pool workers spin before sleeping, in microseconds."""

def get_spin_us() -> int: ...
def pool_stalls() -> int:
    """Jobs that waited on a late worker (its core busy) and made the pool run alone for a while."""

def engine_variant() -> str:
    """The instruction set this build was compiled for: ``baseline``, ``avx2`` or ``avx512``."""

def build_info() -> dict[str, Any]:
    """``{"eigen": version, "simd": instruction sets, "engine": variant, "threads": "nativebp pool"}``."""

def all_finite(a: NDArray[Any]) -> bool:
    """No NaN or infinity in a C-contiguous float32/float64 array (one pass, no temporary)."""

def sgemm(A: NDArray[np.float32], B: NDArray[np.float32], trans_a: bool = False, trans_b: bool = False,
          C: Optional[NDArray[np.float32]] = None, accumulate: bool = False,
          bias: Optional[NDArray[np.float32]] = None) -> NDArray[np.float32]:
    """The engine's GEMM: op(A) op(B) (+ C) (+ bias row), op = transpose where asked."""

def gemm_benchmark(n: int, repeats: int = 1) -> None:
    """``repeats`` float32 n x n products on matrices kept between calls (for bench/)."""

class _Network(Generic[_F]):
    """Layers, one flat parameter / gradient / state buffer, preallocated batch buffers."""
    def __init__(self, layers: Sequence[LayerSpec], in_features: int, seed: int) -> None: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...
    def param_info(self) -> list[tuple[str, int, int, bool]]:
        """(name, rows, cols (0 for a vector), is_weight) per parameter tensor, in buffer order."""
    def state_info(self) -> list[tuple[str, int, int]]: ...
    def param_array(self) -> NDArray[_F]:
        """The flat parameter buffer (a writable view, alive as long as the network)."""
    def grad_array(self) -> NDArray[_F]: ...
    def state_array(self) -> NDArray[_F]: ...
    def set_trainable(self, index: int, on: bool) -> None: ...
    def trainable(self) -> list[bool]: ...
    def reseed(self, seed: int) -> None: ...
    def rng_state(self) -> str: ...
    def set_rng_state(self, state: str) -> None: ...
    def forward(self, X: NDArray[_F], training: bool = False) -> NDArray[_F]: ...
    def loss_and_grad(self, X: NDArray[_F], y: Target, loss: str, delta: float = 1.0, want_dx: bool = False,
                      training: bool = True, grad_scale: float = 1.0) -> tuple[float, Optional[NDArray[_F]]]:
        """Forward, loss and backward (dL/dZ times grad_scale); adds into the gradient buffer.
        Returns (loss, dL/dX or None). With an allreduce set, X may have 0 rows."""
    def set_allreduce(self, allreduce: Optional[Callable[[memoryview], object]]) -> None:
        """Synced BatchNorm: allreduce(buf) sums a float64 buffer over all replicas in place; None: off."""
    @property
    def distributed(self) -> bool: ...
    def zero_grad(self) -> None: ...
    def train_step(self, X: NDArray[_F], y: Target, loss: str, delta: float, optimizer: _Optimizer[_F],
                   owned: Optional[Sequence[bool]], l1: float = 0.0, l2: float = 0.0, clip_norm: float = 0.0,
                   clip_value: float = 0.0) -> float:
        """zero_grad, forward, loss, backward, penalties, clipping, step; the loss incl. penalty."""
    def train_steps(self, X: NDArray[_F], y: Target, loss: str, delta: float, optimizer: _Optimizer[_F],
                    owned: Optional[Sequence[bool]], l1: float, l2: float, clip_norm: float, clip_value: float,
                    steps: int, batch_size: int) -> NDArray[np.float64]:
        """``steps`` train steps on consecutive batches (cycling); the losses, cut after a non-finite one."""
    def batch_ok(self, X: Any, y: Any = None, labels: bool = False) -> bool:
        """X (and y) are exact C-contiguous arrays of this dtype and shape, finite, labels in range."""
    def step(self, optimizer: _Optimizer[_F], owned: Optional[Sequence[bool]]) -> None: ...
    def clip_grad(self, max_norm: float, max_value: float) -> float: ...
    def grads_finite(self) -> bool:
        """No NaN or infinity in any trainable gradient (the check train_step makes before its step)."""
    def evaluate(self, X: NDArray[_F], y: Target, loss: str, delta: float, batch: int, accuracy: bool,
                 errors: bool) -> Totals: ...
    def gradcheck(self, X: NDArray[_F], y: Target, loss: str, delta: float, max_checks: int, seed: int,
                  training: bool) -> list[dict[str, Any]]: ...

class _Trainer(Generic[_F]):
    """The fused epoch loop over (X, y); keeps references to the network, optimizer and data."""
    def __init__(self, net: _Network[_F], optimizer: _Optimizer[_F], X: NDArray[_F], y: Target, loss: str,
                 delta: float, batch_size: int, shuffle: bool, seed: int, owned: Optional[Sequence[bool]],
                 l1: float, l2: float, clip_norm: float, clip_value: float, accuracy: bool, errors: bool) -> None: ...
    @property
    def batches_per_epoch(self) -> int: ...
    def begin_epoch(self, seed: Optional[int] = None) -> None:
        """Reset the totals and, with shuffle, draw the epoch's order (seeded: resumable)."""
    def run(self, max_batches: int) -> bool:
        """Train on up to max_batches more batches; True when the epoch is done (or diverged)."""
    def totals(self) -> Totals: ...

class _Optimizer(Generic[_F]):
    lr: float
    steps: list[int]
    @property
    def kind(self) -> str: ...
    def state_names(self) -> list[str]: ...
    def state_array(self, name: str) -> NDArray[_F]: ...
    def reset_state(self) -> None: ...

class _SGD(_Optimizer[_F]):
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    def __init__(self, net: _Network[_F], lr: float, momentum: float, dampening: float, weight_decay: float,
                 nesterov: bool) -> None: ...

class _Adagrad(_Optimizer[_F]):
    lr_decay: float
    weight_decay: float
    eps: float
    def __init__(self, net: _Network[_F], lr: float, lr_decay: float, weight_decay: float,
                 initial_accumulator_value: float, eps: float) -> None: ...

class _RMSprop(_Optimizer[_F]):
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    def __init__(self, net: _Network[_F], lr: float, alpha: float, eps: float, weight_decay: float, momentum: float,
                 centered: bool) -> None: ...

class _Adam(_Optimizer[_F]):
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    def __init__(self, net: _Network[_F], lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                 amsgrad: bool, decoupled: bool) -> None: ...

class Network32(_Network[np.float32]): ...
class Trainer32(_Trainer[np.float32]): ...
class Optimizer32(_Optimizer[np.float32]): ...
class SGD32(_SGD[np.float32], Optimizer32): ...
class Adagrad32(_Adagrad[np.float32], Optimizer32): ...
class RMSprop32(_RMSprop[np.float32], Optimizer32): ...
class Adam32(_Adam[np.float32], Optimizer32): ...

class Network64(_Network[np.float64]): ...
class Trainer64(_Trainer[np.float64]): ...
class Optimizer64(_Optimizer[np.float64]): ...
class SGD64(_SGD[np.float64], Optimizer64): ...
class Adagrad64(_Adagrad[np.float64], Optimizer64): ...
class RMSprop64(_RMSprop[np.float64], Optimizer64): ...
class Adam64(_Adam[np.float64], Optimizer64): ...
