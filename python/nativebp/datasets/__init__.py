"""Small, citable datasets as numpy arrays: pure Python, no downloads, no scikit-learn.

    >>> from nativebp import datasets
    >>> X, y = datasets.load_digits()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 64), dtype('float32'), dtype('int64'))
    >>> X_train, y_train, X_test, y_test = datasets.load_digits_split()
    >>> len(X_train), len(X_test)
    (1346, 451)

- ``load_digits``, ``load_digits_split``: UCI Optical Recognition of Handwritten Digits, shipped
  inside this package (``digits.npz``, 45 KB).
- ``load_idx``: one MNIST-style IDX file (gzip or plain) -> numpy array.
- ``load_fashion_mnist``, ``load_mnist``: the four IDX files of a directory -> train/test arrays.
  Fashion-MNIST comes from Debian: ``apt-get install dataset-fashion-mnist``.

Citations (see README in this directory for provenance and licenses):

- Digits: E. Alpaydin, C. Kaynak (1998). Optical Recognition of Handwritten Digits. UCI Machine
  Learning Repository, https://doi.org/10.24432/C50P49. License CC BY 4.0.
- Fashion-MNIST: H. Xiao, K. Rasul, R. Vollgraf (2017). Fashion-MNIST: a Novel Image Dataset for
  Benchmarking Machine Learning Algorithms. arXiv:1708.07747. License MIT (Zalando SE).
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_digits", "load_digits_split", "load_idx", "load_fashion_mnist", "load_mnist",
           "FASHION_MNIST_DIR"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
_DIGITS_FILE = Path(__file__).with_name("digits.npz")

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_STEMS = ("train-images", "idx3-ubyte"), ("train-labels", "idx1-ubyte"), \
             ("t10k-images", "idx3-ubyte"), ("t10k-labels", "idx1-ubyte")


# --------------------------------------------------------------------------------------- digits
def load_digits(return_split: bool = False):
    """UCI handwritten digits: ``(X, y)``, X float32 (1797, 64) in [0, 1] (pixel counts 0..16
    divided by 16, 8x8 images row by row), y int64 labels 0..9.

    ``return_split=True`` returns ``load_digits_split()`` instead:
    ``(X_train, y_train, X_test, y_test)`` with the default, documented split.

        >>> X, y = load_digits()
        >>> X.reshape(-1, 8, 8).shape, int(y.max()), float(X.max())
        ((1797, 8, 8), 9, 1.0)
    """
    if not isinstance(return_split, (bool, np.bool_)):
        raise TypeError(f"return_split must be a bool, got {type(return_split).__name__}")
    if return_split:
        return load_digits_split()
    with np.load(_DIGITS_FILE, allow_pickle=False) as f:
        X, y = f["X"], f["y"]
    return X.astype(np.float32) / np.float32(16), y.astype(np.int64)


def load_digits_split(test_size: float = 0.25, seed: int = 0):
    """Fixed, stratified split of ``load_digits()``: ``(X_train, y_train, X_test, y_test)``.

    Protocol (pure integer arithmetic, identical on every platform and numpy version):

    1. Row ``i`` (0-based, file order) gets the key ``splitmix64(seed * 2**32 + i)``, where
       splitmix64 is Vigna's 64-bit finalizer (add 0x9E3779B97F4A7C15, then xor-shift-multiply by
       0xBF58476D1CE4E5B9 and 0x94D049BB133111EB, shifts 30/27/31). Keys never tie.
    2. For each class c with n_c rows, the ``floor(test_size * n_c + 0.5)`` rows with the smallest
       keys (clamped to 1..n_c-1, so every class is in both sets) go to test.
    3. Both sets keep file order. Defaults give 1346 train / 451 test rows.

        >>> Xtr, ytr, Xte, yte = load_digits_split(test_size=0.2, seed=1)
        >>> Xtr.shape, Xte.shape, sorted(set(yte.tolist())) == list(range(10))
        ((1438, 64), (359, 64), True)
    """
    real = (int, float, np.integer, np.floating)
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, real):
        raise TypeError(f"test_size must be a float in (0, 1), got {type(test_size).__name__}")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int in [0, 2**32), got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed!r}")
    X, y = load_digits()
    keys = _splitmix64(np.uint64(int(seed) << 32) + np.arange(len(y), dtype=np.uint64))
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        k = min(max(int(np.floor(float(test_size) * len(rows) + 0.5)), 1), len(rows) - 1)
        test[rows[np.argsort(keys[rows], kind="stable")[:k]]] = True
    return X[~test], y[~test], X[test], y[test]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vigna's splitmix64 output function on a uint64 array (wrapping arithmetic, a bijection)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# ------------------------------------------------------------------------------------------ IDX
def load_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzip-compressed or plain, into a native-endian array.

    Compression is detected from the magic bytes 1f 8b, not the file name. Header: two zero bytes,
    a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the
    number of dimensions, then each dimension as a big-endian uint32; the data follow, big-endian.
    Raises ``ValueError`` naming the file on a bad magic number, unknown type code, corrupt gzip
    stream, truncated data or trailing bytes.

        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
        >>> _ = open(p, "wb").write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> load_idx(p)
        array([7, 8, 9], dtype=uint8)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{os.fspath(path)!r}: corrupt gzip stream ({e})") from None
    if len(raw) < 4:
        raise ValueError(f"{os.fspath(path)!r}: truncated IDX header ({len(raw)} bytes, need 4)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{os.fspath(path)!r}: bad IDX magic {raw[:4].hex(' ')}, "
                         "expected 00 00 <type> <ndim>")
    if raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{os.fspath(path)!r}: unknown IDX type code 0x{raw[2]:02X}, expected one "
                         f"of {', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{os.fspath(path)!r}: truncated IDX header ({len(raw)} bytes, "
                         f"need {start} for {ndim} dimensions)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = start + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if len(raw) < need:
        raise ValueError(f"{os.fspath(path)!r}: truncated IDX data: shape {shape} of {dtype.name} "
                         f"needs {need} bytes, file has {len(raw)}")
    if len(raw) > need:
        raise ValueError(f"{os.fspath(path)!r}: {len(raw) - need} trailing bytes after IDX data "
                         f"of shape {shape} ({dtype.name})")
    arr = np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


# ------------------------------------------------------------------------- MNIST, Fashion-MNIST
def load_fashion_mnist(path=None):
    """Fashion-MNIST: ``((X_train, y_train), (X_test, y_test))``, X float32 (n, 784) in [0, 1]
    (pixels / 255, 28x28 row by row), y int64 labels 0..9; n = 60000 train, 10000 test.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) from ``path``, by default
    ``FASHION_MNIST_DIR`` where Debian's ``dataset-fashion-mnist`` package puts them.

        >>> (X, y), (Xt, yt) = load_fashion_mnist()   # doctest: +SKIP
        >>> X.shape, Xt.shape                           # doctest: +SKIP
        ((60000, 784), (10000, 784))
    """
    if path is None:
        if not FASHION_MNIST_DIR.is_dir():
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: install it with "
                "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass "
                "path= a directory holding train-images-idx3-ubyte(.gz), "
                "train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), "
                "t10k-labels-idx1-ubyte(.gz)")
        path = FASHION_MNIST_DIR
    return _load_idx_dir(path, "Fashion-MNIST")


def load_mnist(path):
    """MNIST from a directory ``path`` holding the four original IDX files (plain or ``.gz``):
    ``((X_train, y_train), (X_test, y_test))``, same names, shapes and dtypes as
    ``load_fashion_mnist``.

        >>> (X, y), (Xt, yt) = load_mnist("~/data/mnist")   # doctest: +SKIP
    """
    return _load_idx_dir(path, "MNIST")


def _load_idx_dir(path, name):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike directory, got {type(path).__name__}")
    d = Path(path).expanduser()
    if not d.is_dir():
        raise FileNotFoundError(f"{name}: path={os.fspath(path)!r} is not a directory")
    arrays = []
    for stem, kind in _IDX_STEMS:
        # The canonical name or the 'train-images.idx3-ubyte' variant, each with or without .gz.
        names = [f"{stem}{sep}{kind}{gz}" for sep in "-." for gz in ("", ".gz")]
        found = next((d / n for n in names if (d / n).is_file()), None)
        if found is None:
            extra = (" (Debian: `apt-get install dataset-fashion-mnist`)"
                     if name == "Fashion-MNIST" else "")
            raise FileNotFoundError(
                f"{name}: no {stem}-{kind}(.gz) in path={os.fspath(d)!r}{extra}")
        arrays.append((found, load_idx(found)))
    out = []
    for (fi, images), (fl, labels) in (arrays[0:2], arrays[2:4]):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{fi}: expected uint8 images of shape (n, rows, cols), "
                             f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8 or len(labels) != len(images):
            raise ValueError(f"{fl}: expected {len(images)} uint8 labels, "
                             f"got {labels.dtype} {labels.shape}")
        X = images.reshape(len(images), -1).astype(np.float32)
        X /= np.float32(255)
        out.append((X, labels.astype(np.int64)))
    return tuple(out)
