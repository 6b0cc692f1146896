"""Adversarial files for nb.load and failures during nb.save (test_io.py covers the basic cases).

Loading a damaged or hostile file must raise ValueError (MemoryError where a crafted size asks for
more than the machine has) and never crash, hang or return a network that differs from the saved
one; a save that fails or is killed at any point must leave the previous file loadable."""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest

import nativebp as nb


def trained(dtype="float32"):
    net = nb.Sequential([nb.Dense(4, 6), nb.BatchNorm1d(6), nb.Tanh(), nb.Dropout(0.1), nb.Dense(6, 3)],
                        dtype=dtype, seed=3)
    opt = nb.optim.Adam(net, lr=1e-2)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    for _ in range(3):
        net.train_step(X, y, loss="cross_entropy", optimizer=opt)
    return net, opt, X


def same(a, b, X):
    assert a.dtype == b.dtype and [p.name for p in a.parameters()] == [p.name for p in b.parameters()]
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.array_equal(p.value, q.value) and p.trainable == q.trainable
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, the network, its optimizer, data, the file's bytes)."""
    net, opt, X = trained()
    path = tmp_path_factory.mktemp("saved") / "m.nbp"
    net.save(path, optimizer=opt)
    return path, net, opt, X, path.read_bytes()


def load_or_value_error(path, with_optimizer=False):
    """The loaded network, or None when load raised ValueError; anything else fails the test."""
    try:
        return nb.load(path, with_optimizer=with_optimizer)
    except ValueError as e:
        assert os.fspath(path) in str(e) or "nbp" in str(e), str(e)
        return None


# ------------------------------------------------------------------------------ damaged bytes
def test_every_truncation_raises_value_error(saved, tmp_path):
    path, _, _, _, raw = saved
    cut = tmp_path / "cut.nbp"
    for n in sorted(set(range(0, len(raw), max(1, len(raw) // 97))) | {1, 3, 4, 22, len(raw) - 22, len(raw) - 1}):
        cut.write_bytes(raw[:n])
        assert load_or_value_error(cut) is None, f"a file cut to {n} of {len(raw)} bytes loaded"


def test_a_flipped_byte_anywhere_raises_or_loads_the_identical_network(saved, tmp_path):
    """Zip keeps a CRC per member and the header a SHA-256 per array: a flip in data is caught;
    one in a field nothing reads (a timestamp) may load, and then must give the same network."""
    path, net, _, X, raw = saved
    bad, loaded, rejected = tmp_path / "flip.nbp", 0, 0
    for at in range(0, len(raw), max(1, len(raw) // 401)):
        for mask in (0x01, 0x80):
            b = bytearray(raw)
            b[at] ^= mask
            bad.write_bytes(bytes(b))
            got = load_or_value_error(bad)
            if got is None:
                rejected += 1
            else:
                loaded += 1
                same(got, net, X)
    assert rejected > 10 * loaded  # nearly every byte matters


# zipfile reads these from the central directory; a local header's copy is covered by the flip
# sweep (raise, or load the same network)
@pytest.mark.parametrize("record, field, value", [
    (b"PK\x01\x02", 8, 0x0001),   # general purpose flags: the 'encrypted' bit
    (b"PK\x01\x02", 10, 99),      # compression method (99: AES)
    (b"PK\x01\x02", 6, 0x0094),   # version needed to extract (14.8)
], ids=["encrypted-flag", "compression-aes", "version-needed"])
def test_zip_records_with_impossible_flags_raise_value_error(saved, tmp_path, record, field, value):
    """The header.json member's zip record edited: zipfile raises its own errors for these."""
    raw = bytearray(saved[4])
    at = raw.index(record) + field
    raw[at:at + 2] = value.to_bytes(2, "little")
    (tmp_path / "bad.nbp").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bad.nbp"):
        nb.load(tmp_path / "bad.nbp")


def test_random_garbage_and_empty_files_raise_value_error(tmp_path):
    rng = np.random.default_rng(0)
    bad = tmp_path / "g.nbp"
    for blob in [b"", b"PK", b"PK\x03\x04" + bytes(100), bytes(rng.integers(0, 256, 5000, dtype=np.uint8)),
                 b"\x93NUMPY" + bytes(50), json.dumps({"format": "nativebp-model"}).encode()]:
        bad.write_bytes(blob)
        assert load_or_value_error(bad) is None


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises((ValueError, IsADirectoryError)):
        nb.load(tmp_path)


# ------------------------------------------------------------------------------ well-formed but hostile
def rewrite(src, dst, edit_header=None, edit_arrays=None, fix_checksums=True):
    """Copy a model file with its header and/or arrays edited; checksums recomputed so that the
    loader's later checks are reached."""
    with zipfile.ZipFile(src) as z:
        header = json.loads(z.read("header.json"))
        arrays = {n[:-4]: np.lib.format.read_array(io.BytesIO(z.read(n))) for n in z.namelist() if n.endswith(".npy")}
    if edit_header:
        header = edit_header(header) or header  # an edit may return a whole new header
    if edit_arrays:
        edit_arrays(arrays)
    if fix_checksums and isinstance(header, dict) and isinstance(header.get("arrays"), dict):
        import hashlib
        for k, a in arrays.items():
            header["arrays"][k] = {"dtype": a.dtype.str, "shape": list(a.shape),
                                   "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("header.json", json.dumps(header))
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a)
            z.writestr(f"{k}.npy", buf.getvalue())


def _as(dtype):
    def edit(arrays):
        for k in arrays:
            arrays[k] = arrays[k].astype(dtype)
    return edit


def _layer(i, **over):
    return lambda h: h["layers"][i].update(over)


HOSTILE = {
    # a file from another dtype: arrays converted (checksums valid) but the header says float32
    "arrays-float64-header-float32": (None, _as(np.float64)),
    "arrays-float16": (None, _as(np.float16)),
    "header-float64-arrays-float32": (lambda h: h.update(dtype="float64"), None),
    "header-dtype-int8": (lambda h: h.update(dtype="int8"), None),
    "version-0": (lambda h: h.update(version=0), None),
    "version-99": (lambda h: h.update(version=99), None),
    "version-float": (lambda h: h.update(version=1.0), None),
    "version-missing": (lambda h: h.pop("version"), None),
    "format-missing": (lambda h: h.pop("format"), None),
    "header-is-a-list": (lambda h: [h], None),
    "format-is-a-list": (lambda h: h.update(format=[]), None),
    "arrays-not-a-dict": (lambda h: {**h, "arrays": [1, 2]}, None),
    "layers-not-a-list": (lambda h: h.update(layers="dense"), None),
    "layer-config-int": (lambda h: h["layers"].__setitem__(0, 5), None),
    "layer-class-unknown": (_layer(0, **{"class": "Conv2d"}), None),
    "layer-class-private": (_layer(0, **{"class": "__class__"}), None),
    "dense-10**12-units": (_layer(0, in_features=10**12), None),
    "dense-2**62-units": (_layer(0, out_features=2**62), None),
    "dense-negative-units": (_layer(0, out_features=-6), None),
    "dense-units-string": (_layer(0, out_features="6"), None),
    "dense-bias-string": (_layer(0, bias="yes"), None),
    "batchnorm-10**12": (_layer(1, num_features=10**12), None),
    "dropout-p-2": (_layer(3, p=2.0), None),
    "in-features-huge": (lambda h: h.update(in_features=10**15), None),
    "in-features-negative": (lambda h: h.update(in_features=-4), None),
    "seed-negative": (lambda h: h.update(seed=-1), None),
    "seed-2**64": (lambda h: h.update(seed=2**64), None),
    "rng-state-garbage": (lambda h: h.update(rng_state="0 0 0"), None),
    "rng-state-int": (lambda h: h.update(rng_state=5), None),
    "params-one-short": (None, lambda a: a.update(params=a["params"][:-1])),
    "params-2d": (None, lambda a: a.update(params=a["params"].reshape(1, -1))),
    "states-missing": (None, lambda a: a.pop("states")),
    "params-object-dtype": (None, lambda a: a.update(params=a["params"].astype(object))),
    "optimizer-buffer-short": (None, lambda a: a.update({"optimizer.exp_avg": a["optimizer.exp_avg"][:5]})),
    "optimizer-steps-negative": (lambda h: h["optimizer"].update(steps=[-5] * len(h["optimizer"]["steps"])), None),
    "optimizer-kind-unknown": (lambda h: h["optimizer"].update(kind="Lion"), None),
    "optimizer-kind-base-class": (lambda h: h["optimizer"].update(kind="Optimizer"), None),
    "optimizer-lr-string": (lambda h: h["optimizer"]["defaults"].update(lr="fast"), None),
    "optimizer-lr-nan": (lambda h: h["optimizer"]["defaults"].update(lr=float("nan")), None),
    "optimizer-owned-wrong-length": (lambda h: h["optimizer"].update(owned=[True]), None),
    "optimizer-buffer-missing": (None, lambda a: a.pop("optimizer.exp_avg_sq")),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_but_well_formed_files_raise_value_error(saved, tmp_path, name):
    path = saved[0]
    edit_header, edit_arrays = HOSTILE[name]
    rewrite(path, tmp_path / "bad.nbp", edit_header, edit_arrays)
    with pytest.raises(ValueError, match="bad.nbp"):
        nb.load(tmp_path / "bad.nbp", with_optimizer=True)


def test_the_rewriting_helper_itself_keeps_a_valid_file_valid(saved, tmp_path):
    path, net, opt, X, _ = saved
    rewrite(path, tmp_path / "copy.nbp")
    net2, opt2 = nb.load(tmp_path / "copy.nbp", with_optimizer=True)
    same(net2, net, X)


def test_an_npy_header_claiming_a_huge_array_raises_without_allocating_it(saved, tmp_path):
    """The member's own .npy header says 2**50 floats (8 PiB): the loader must refuse, not try."""
    path = saved[0]
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (2**50,)})
    members["params.npy"] = buf.getvalue() + members["params.npy"][128:]
    with zipfile.ZipFile(tmp_path / "bomb.nbp", "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises((ValueError, MemoryError)):
        nb.load(tmp_path / "bomb.nbp")


# ------------------------------------------------------------------------------ failures while saving
def _no_temp_files(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")] == []


@pytest.mark.parametrize("failure", ["os.replace", "fsync", "disk-full", "KeyboardInterrupt-in-write"])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(saved, tmp_path, monkeypatch, failure):
    path, net, opt, X, _ = saved
    target = tmp_path / "m.nbp"
    old = nb.Sequential([nb.Dense(4, 3)], seed=9)
    old.save(target)
    before = target.read_bytes()
    if failure == "os.replace":
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError("replace refused")))
        expected = PermissionError
    elif failure == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
        expected = OSError
    elif failure == "disk-full":
        def full(f, a, **kw):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(np.lib.format, "write_array", full)
        expected = OSError
    else:
        def interrupted(self, *a, **kw):
            raise KeyboardInterrupt
        monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted)
        expected = KeyboardInterrupt
    with pytest.raises(expected):
        net.save(target, optimizer=opt)
    monkeypatch.undo()
    assert target.read_bytes() == before and _no_temp_files(tmp_path)
    same(nb.load(target), old, X)


def test_saving_into_a_missing_folder_or_onto_a_folder_raises_oserror(saved, tmp_path):
    net = saved[1]
    with pytest.raises(FileNotFoundError):
        net.save(tmp_path / "missing" / "m.nbp")
    (tmp_path / "dir.nbp").mkdir()
    with pytest.raises(OSError):
        net.save(tmp_path / "dir.nbp")
    assert (tmp_path / "dir.nbp").is_dir() and _no_temp_files(tmp_path)


SAVER = textwrap.dedent("""
    import sys, numpy as np, nativebp as nb
    net = nb.Sequential([nb.Dense(300, 300), nb.ReLU(), nb.Dense(300, 300)], seed=1)
    opt = nb.optim.Adam(net)
    print("ready", flush=True)
    i = 0
    while True:  # ~1.4 MB per save; killed at a random moment by the parent
        i += 1
        net.parameters()[1].value[...] = i
        net.save(sys.argv[1], optimizer=opt, meta={"i": i})
""")


def test_killing_the_process_mid_save_leaves_a_complete_loadable_file(tmp_path):
    """SIGKILL at ten moments while a subprocess saves in a loop: the file on disk is always a
    complete earlier (or the latest) save, never a mixture; only temporaries may be left over."""
    target = tmp_path / "m.nbp"
    nb.Sequential([nb.Dense(300, 300), nb.ReLU(), nb.Dense(300, 300)], seed=1).save(target, meta={"i": 0})
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready"
            threading.Event().wait(rng.uniform(0.05, 0.4))
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stdout.close()
        net = nb.load(target)
        i = nb.io.read_header(target)["meta"]["i"]
        seen.add(i)
        assert np.all(net.parameters()[1].value == i)  # the bias written just before that save
    for f in os.listdir(tmp_path):  # stale temporaries of killed saves are not model files to load
        assert f == "m.nbp" or (f.startswith(".m.nbp.") and f.endswith(".tmp")), f
    assert len(seen) > 1  # the kills did land at different points of the loop


def test_two_threads_saving_to_one_path_leave_one_complete_file(saved, tmp_path):
    path, net, opt, X, _ = saved
    other = nb.Sequential([nb.Dense(4, 3)], seed=5)
    target = tmp_path / "m.nbp"
    errors = []

    def save_many(model):
        try:
            for _ in range(20):
                model.save(target)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=save_many, args=(m,)) for m in (net, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = nb.load(target)
    same(got, net if len(got.parameters()) == len(net.parameters()) else other, X)
    assert _no_temp_files(tmp_path)
