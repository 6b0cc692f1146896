"""nativebp.datasets: the IDX reader on hand-built files, the shipped digits and its split,
Fashion-MNIST from Debian's dataset-fashion-mnist package."""
import gzip
import struct

import numpy as np
import pytest

from nativebp import datasets

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr, code=None):
    """An IDX file written by hand: 00 00 <code> <ndim>, big-endian uint32 dims, big-endian data."""
    code = IDX_CODES[arr.dtype.type] if code is None else code
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(tmp_path, name, data, compress=False):
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if compress else data)
    return p


# ------------------------------------------------------------------------------------ load_idx
@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)])
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_roundtrips_every_dtype_and_ndim_plain_and_gzip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    arr = (rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype) if info
           else rng.standard_normal(shape).astype(dtype))
    out = datasets.load_idx(write(tmp_path, "f.idx", idx_bytes(arr), compress))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    out[...] = 0  # a writable copy, not a view of the file bytes


def test_load_idx_detects_gzip_by_magic_bytes_not_file_name(tmp_path):
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    gz_named_plain = write(tmp_path, "a.gz", idx_bytes(arr))
    plain_named_gz = write(tmp_path, "b-idx2-ubyte", idx_bytes(arr), compress=True)
    np.testing.assert_array_equal(datasets.load_idx(gz_named_plain), arr)
    np.testing.assert_array_equal(datasets.load_idx(str(plain_named_gz)), arr)


def test_load_idx_accepts_zero_length_dimension(tmp_path):
    out = datasets.load_idx(write(tmp_path, "e", idx_bytes(np.zeros((0, 28), np.uint8))))
    assert out.shape == (0, 28) and out.dtype == np.uint8


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("mutate, match", [
    (lambda b: b"\x01" + b[1:], "bad IDX magic"),
    (lambda b: b[:1] + b"\x07" + b[2:], "bad IDX magic"),
    (lambda b: b[:2] + b"\x0A" + b[3:], "unknown IDX type code 0x0A"),
    (lambda b: b[:2], "truncated IDX header"),
    (lambda b: b[:9], "truncated IDX header"),
    (lambda b: b[:-1], "truncated IDX data"),
    (lambda b: b + b"\x00", "1 trailing bytes"),
    (lambda b: b"", "truncated IDX header"),
])
def test_load_idx_rejects_malformed_file_with_value_error_naming_it(tmp_path, compress, mutate,
                                                                     match):
    good = idx_bytes(np.arange(6, dtype=np.int32).reshape(2, 3))
    p = write(tmp_path, "broken-idx2", mutate(good), compress)
    with pytest.raises(ValueError, match=match) as e:
        datasets.load_idx(p)
    assert "broken-idx2" in str(e.value)


def test_load_idx_rejects_corrupt_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    p = write(tmp_path, "cut.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.gz.*corrupt gzip"):
        datasets.load_idx(p)


def test_load_idx_bad_path_raises_type_and_file_not_found_errors(tmp_path):
    with pytest.raises(TypeError, match="path"):
        datasets.load_idx(3)
    with pytest.raises(FileNotFoundError):
        datasets.load_idx(tmp_path / "missing")


# ------------------------------------------------------------------------------ MNIST-like dirs
def write_mnist_dir(tmp_path, n_train=7, n_test=3, names="-", compress=True):
    rng = np.random.default_rng(1)
    parts = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        parts[split] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, n, dtype=np.uint8))
        gz = ".gz" if compress else ""
        images, labels = parts[split]
        write(tmp_path, f"{split}-images{names}idx3-ubyte{gz}", idx_bytes(images), compress)
        write(tmp_path, f"{split}-labels{names}idx1-ubyte{gz}", idx_bytes(labels), compress)
    return parts


@pytest.mark.parametrize("names, compress", [("-", True), ("-", False), (".", False)])
def test_load_mnist_reads_four_files_scaled_and_flattened(tmp_path, names, compress):
    parts = write_mnist_dir(tmp_path, names=names, compress=compress)
    (X, y), (Xt, yt) = datasets.load_mnist(tmp_path)
    assert X.shape == (7, 784) and Xt.shape == (3, 784)
    assert X.dtype == Xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    np.testing.assert_array_equal(X, parts["train"][0].reshape(7, -1) / np.float32(255))
    np.testing.assert_array_equal(yt, parts["t10k"][1])


def test_load_mnist_missing_file_or_dir_raises_file_not_found_naming_it(tmp_path):
    write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="path="):
        datasets.load_mnist(tmp_path / "nope")
    with pytest.raises(TypeError, match="path"):
        datasets.load_mnist(None)


def test_load_mnist_label_count_mismatch_raises_value_error(tmp_path):
    write_mnist_dir(tmp_path)
    write(tmp_path, "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(6, np.uint8)), True)
    with pytest.raises(ValueError, match="train-labels.*expected 7 uint8 labels"):
        datasets.load_mnist(tmp_path)


def test_load_fashion_mnist_without_debian_package_names_it_and_path(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*path="):
        datasets.load_fashion_mnist()


@pytest.fixture(scope="module")
def fashion():
    if not datasets.FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"{datasets.FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist")
    return datasets.load_fashion_mnist()


def test_fashion_mnist_has_60000_train_10000_test_float32_in_unit_range(fashion):
    (X, y), (Xt, yt) = fashion
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == Xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and Xt.min() == 0.0 and Xt.max() == 1.0


def test_fashion_mnist_labels_are_balanced_classes_0_to_9(fashion):
    (_, y), (_, yt) = fashion
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10


# ------------------------------------------------------------------------------------- digits
def test_load_digits_shapes_dtypes_range_and_class_counts():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.shape == (1797,)
    assert y.dtype == np.int64 and X.min() == 0.0 and X.max() == 1.0
    assert np.all(X * 16 == np.round(X * 16))  # pixel counts 0..16 scaled by 1/16
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    np.testing.assert_array_equal(y[:10], np.arange(10))


def test_digits_data_file_is_small():
    path = datasets._DIGITS_FILE
    assert path.is_file() and path.stat().st_size < 100_000


def splitmix64(x):
    """Vigna's splitmix64 output function in plain Python integers (the docstring's protocol)."""
    m = 2**64 - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_splitmix64_matches_reference_first_output_for_seed_0():
    assert splitmix64(0) == 0xE220A8397B1DCDAF  # SplitMix64 seeded with 0, first output
    x = np.array([0, 1, 2**40 + 7], dtype=np.uint64)
    assert datasets._splitmix64(x).tolist() == [splitmix64(int(v)) for v in x]


@pytest.mark.parametrize("test_size, seed", [(0.25, 0), (0.1, 7), (0.5, 2**32 - 1)])
def test_digits_split_follows_documented_protocol_exactly(test_size, seed):
    X, y = datasets.load_digits()
    test = set()
    for c in range(10):
        rows = [i for i in range(len(y)) if y[i] == c]
        k = int(test_size * len(rows) + 0.5)
        test |= set(sorted(rows, key=lambda i: splitmix64((seed << 32) + i))[:k])
    test = sorted(test)
    train = sorted(set(range(len(y))) - set(test))
    Xtr, ytr, Xte, yte = datasets.load_digits_split(test_size=test_size, seed=seed)
    np.testing.assert_array_equal(Xte, X[test])
    np.testing.assert_array_equal(yte, y[test])
    np.testing.assert_array_equal(Xtr, X[train])
    np.testing.assert_array_equal(ytr, y[train])


def test_digits_default_split_is_pinned_and_repeatable():
    X, y = datasets.load_digits()
    a, b = datasets.load_digits_split(), datasets.load_digits(return_split=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # The first test rows of the default split, pinned: a protocol change must fail here.
    np.testing.assert_array_equal(a[2][:10], X[[3, 10, 18, 21, 33, 40, 41, 48, 49, 57]])


def test_digits_split_is_stratified_with_a_rounded_quarter_of_each_class_in_test():
    _, y = datasets.load_digits()
    Xtr, ytr, Xte, yte = datasets.load_digits_split(test_size=0.25, seed=0)
    assert Xtr.shape == (1346, 64) and Xte.shape == (451, 64) and len(ytr) + len(yte) == 1797
    expected = np.floor(0.25 * np.bincount(y) + 0.5).astype(int)
    np.testing.assert_array_equal(np.bincount(yte, minlength=10), expected)
    np.testing.assert_array_equal(np.bincount(ytr, minlength=10), np.bincount(y) - expected)


def test_digits_split_seed_changes_rows_but_keeps_counts():
    _, _, Xa, ya = datasets.load_digits_split(seed=0)
    _, _, Xb, yb = datasets.load_digits_split(seed=1)
    assert not np.array_equal(Xa, Xb)
    np.testing.assert_array_equal(np.bincount(ya), np.bincount(yb))


def test_digits_split_extreme_test_size_keeps_every_class_in_both_sets():
    for ts in (0.001, 0.999):
        _, ytr, _, yte = datasets.load_digits_split(test_size=ts)
        assert set(ytr.tolist()) == set(yte.tolist()) == set(range(10))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(test_size=0.0), ValueError, "test_size"),
    (dict(test_size=1.0), ValueError, "test_size"),
    (dict(test_size="0.2"), TypeError, "test_size"),
    (dict(test_size=True), TypeError, "test_size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**32), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
])
def test_digits_split_bad_arguments_raise_naming_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        datasets.load_digits_split(**kwargs)


def test_load_digits_return_split_must_be_bool():
    with pytest.raises(TypeError, match="return_split"):
        datasets.load_digits(return_split="yes")
