"""Saving and loading networks (and optimizers), ``state_dict``, pickling and deep copies.

File format (version 1; conventionally ``*.nbp``): an uncompressed zip archive, so ``np.load``
and ``unzip`` can read it, holding

- ``header.json``: ``{"format": "nativebp-model", "version": 1, "nativebp_version", "dtype",
  "seed", "in_features", "layers": [layer.config() ...], "parameters": [{"name", "shape",
  "is_weight", "trainable"}], "states": [{"name", "size"}], "rng_state"`` (the network's
  generator: dropout masks), ``"training": {"loss", "delta", "metrics"} | null``,
  ``"optimizer": {"kind", "defaults", "steps", "initial_lr", "owned", "buffers"} | null``,
  ``"meta"``: user data (``ModelCheckpoint`` writes ``{"epoch": epochs done}``), ``"arrays":
  {name: {"dtype", "shape", "sha256"}}}``;
- one ``<name>.npy`` per array: ``params`` (the flat parameter buffer, tensors in ``parameters``
  order, row-major), ``states`` (the flat BatchNorm running statistics) and
  ``optimizer.<buffer>`` (moment buffers, each as long as ``params``).

Saving writes a temporary file in the same directory, fsyncs it and renames it over ``path``, so
a crash mid-save leaves the old file. Loading checks the format name and version, every array's
dtype, shape and SHA-256, and the architecture's tensor shapes, and raises ``ValueError`` on a
truncated, corrupted or foreign file. A round trip is bit-exact.
"""
from __future__ import annotations

import os

import numpy as np

from ._checks import as_dtype

__all__ = ["save", "load", "read_header", "state_dict", "load_state_dict", "FORMAT", "VERSION"]

FORMAT, VERSION = "nativebp-model", 1


# ------------------------------------------------------------------------- network <-> (header, arrays)
def _pack(net, optimizer=None, meta=None):
    from . import __version__
    header = {
        "format": FORMAT, "version": VERSION, "nativebp_version": __version__, "dtype": net.dtype,
        "seed": net.seed, "in_features": net.in_features, "layers": [layer.config() for layer in net.layers],
        "parameters": [{"name": p.name, "shape": list(p.shape), "is_weight": bool(p.is_weight),
                        "trainable": bool(p.trainable)} for p in net.parameters()],
        "states": [{"name": n, "size": int(v.size)} for n, v in net.buffers().items()],
        "rng_state": net._engine.rng_state(), "training": None, "optimizer": None, "meta": meta or {},
    }
    info = getattr(net, "_fit_info", None)
    if info:
        header["training"] = {k: info[k] for k in ("loss", "delta", "metrics")}
    arrays = {"params": net._engine.param_array().copy(), "states": net._engine.state_array().copy()}
    if optimizer is not None:
        optimizer._check_network(net)
        sd = optimizer.state_dict()
        header["optimizer"] = {"kind": sd["kind"], "defaults": sd["defaults"],
                               "steps": [int(s) for s in sd["steps"]],
                               "initial_lr": getattr(optimizer, "initial_lr", None),
                               "owned": optimizer._owned, "buffers": sorted(sd["buffers"])}
        arrays.update({f"optimizer.{k}": v for k, v in sd["buffers"].items()})
    return header, arrays


def _unpack(header, arrays, with_optimizer=False):
    from .layers import layer_from_config
    from .network import Sequential
    net = Sequential([layer_from_config(c) for c in header["layers"]], dtype=as_dtype(header["dtype"]),
                     seed=header["seed"], in_features=header["in_features"])
    want = [{"name": p.name, "shape": list(p.shape)} for p in net.parameters()]
    got = [{"name": p["name"], "shape": list(p["shape"])} for p in header["parameters"]]
    if want != got:
        raise ValueError(f"parameters: the saved tensors {got} do not match the architecture's {want}")
    for key, dst in (("params", net._engine.param_array()), ("states", net._engine.state_array())):
        if arrays[key].shape != dst.shape or arrays[key].dtype != dst.dtype:
            raise ValueError(f"{key}: saved {arrays[key].dtype} {arrays[key].shape}, the architecture needs "
                             f"{dst.dtype} {dst.shape}")
        dst[...] = arrays[key]
    for p, saved in zip(net.parameters(), header["parameters"]):
        p.trainable = bool(saved["trainable"])
    net._engine.set_rng_state(header["rng_state"])
    if header.get("training"):
        net._fit_info = dict(header["training"], optimizer=None)
    if not with_optimizer:
        return net
    return net, _unpack_optimizer(net, header.get("optimizer"), arrays)


def _unpack_optimizer(net, h, arrays):
    from . import optim
    if h is None:
        raise ValueError("with_optimizer: this file was saved without an optimizer (save(path, optimizer=opt))")
    kinds = {c.__name__: c for c in (optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW)}
    if h["kind"] not in kinds:
        raise ValueError(f"optimizer: unknown kind {h['kind']!r}, expected one of {', '.join(kinds)}")
    cls, tensors = kinds[h["kind"]], len(net.parameters())
    owned, steps = h["owned"], h["steps"]
    if owned is not None and (not isinstance(owned, list) or len(owned) != tensors or not any(owned)):
        raise ValueError(f"optimizer: 'owned' must be null or {tensors} flags (one per parameter tensor), "
                         f"at least one true; got {owned!r}")
    if not isinstance(steps, list) or len(steps) not in (0, tensors) or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
        raise ValueError(f"optimizer: 'steps' must be [] or {tensors} step counts >= 0; got {steps!r}")
    params = net if owned is None else [p for p, own in zip(net.parameters(), owned) if own]
    opt = cls(params, **h["defaults"])
    opt.load_state_dict({"kind": h["kind"], "defaults": h["defaults"], "steps": h["steps"],
                         "buffers": {b: arrays[f"optimizer.{b}"] for b in h["buffers"]}})
    if h.get("initial_lr") is not None:
        opt.initial_lr = h["initial_lr"]
    net._fit_info = dict(getattr(net, "_fit_info", None) or {"loss": None, "delta": 1.0, "metrics": []},
                         optimizer=opt)
    return opt


# ------------------------------------------------------------------------------------- files
def _digest(a):
    import hashlib  # loads OpenSSL: kept out of `import nativebp`
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def save(net, path, optimizer=None, meta=None):
    """Write ``net`` (and ``optimizer``'s state, for resuming training exactly) to ``path``
    atomically. ``meta``: a JSON-serialisable dict stored in the header."""
    import json
    import tempfile
    import zipfile
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict, got {type(meta).__name__}")
    header, arrays = _pack(net, optimizer, meta)
    header["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape), "sha256": _digest(v)}
                        for k, v in arrays.items()}
    try:
        text = json.dumps(header, indent=1)
    except TypeError as e:
        raise TypeError(f"meta: must be JSON-serialisable ({e})") from None
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
                z.writestr("header.json", text)
                for name, a in arrays.items():
                    with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, a, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _read(path, arrays_too=True):
    import json
    import struct
    import zipfile
    import zlib
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
    where = os.fspath(path)
    try:
        with zipfile.ZipFile(where) as z:
            try:
                header = json.loads(z.read("header.json"))
            except KeyError:
                raise ValueError("no header.json: not a nativebp model file") from None
            _check_header(header)
            if not arrays_too:
                return header, None
            arrays = {}
            for name, spec in header["arrays"].items():
                with z.open(f"{name}.npy") as member:
                    a = np.lib.format.read_array(member, allow_pickle=False)
                if a.dtype.str != spec["dtype"] or list(a.shape) != spec["shape"]:
                    raise ValueError(f"array {name!r}: stored {a.dtype.str} {list(a.shape)}, header says "
                                     f"{spec['dtype']} {spec['shape']}")
                if _digest(a) != spec["sha256"]:
                    raise ValueError(f"array {name!r}: SHA-256 mismatch, the file is corrupted")
                arrays[name] = a
            return header, arrays
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except ValueError as e:
        raise ValueError(f"{where!r}: {e}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, TypeError, RuntimeError,
            NotImplementedError, zlib.error, struct.error) as e:  # RuntimeError: encrypted member
        raise ValueError(f"{where!r}: not a readable nativebp model file (truncated or corrupted: "
                         f"{type(e).__name__}: {e})") from None


def _check_header(h):
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise ValueError(f"not a nativebp model file (format {h.get('format') if isinstance(h, dict) else h!r}, "
                         f"expected {FORMAT!r})")
    v = h.get("version")
    if not isinstance(v, int) or v < 1:
        raise ValueError(f"bad format version {v!r}")
    if v > VERSION:
        raise ValueError(f"format version {v} was written by a newer nativebp; this one reads versions <= {VERSION}")
    missing = [k for k in ("dtype", "seed", "in_features", "layers", "parameters", "states", "rng_state",
                           "arrays") if k not in h]
    if missing:
        raise ValueError(f"header lacks {', '.join(missing)}")
    if not {"params", "states"} <= set(h["arrays"]):
        raise ValueError("header lists no 'params'/'states' arrays")


def read_header(path):
    """The validated JSON header of a saved file (architecture, dtype, ``meta``, ...), without
    reading the arrays."""
    return _read(path, arrays_too=False)[0]


def load(path, with_optimizer=False):
    """The network saved at ``path``; with ``with_optimizer=True`` the pair ``(net, optimizer)``,
    the optimizer restored with its moment buffers and step counts (to resume training exactly)."""
    header, arrays = _read(path)
    try:
        return _unpack(header, arrays, with_optimizer)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{os.fspath(path)!r}: inconsistent header ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)!r}: {e}") from None


# ------------------------------------------------------------------ state_dict, pickle, deepcopy
def state_dict(net):
    """Name -> numpy copy of every parameter (``"0.weight"`` ...) and running statistic
    (``"1.running_mean"`` ...), as torch's ``state_dict``."""
    out = {p.name: p.value.copy() for p in net.parameters()}
    out.update({k: v.copy() for k, v in net.buffers().items()})
    return out


def load_state_dict(net, state, strict=True):
    """Copy arrays from ``state`` (a dict like ``state_dict()``'s) into the network. With
    ``strict`` every key must match; returns ``(missing_keys, unexpected_keys)``."""
    if not isinstance(state, dict):
        raise TypeError(f"state: expected a dict name -> array, got {type(state).__name__}")
    targets = {p.name: p.value for p in net.parameters()}
    targets.update(net.buffers())
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    if strict and (missing or unexpected):
        raise ValueError(f"state: missing keys {missing}, unexpected keys {unexpected}")
    for k in targets:
        if k in state:
            a = np.asarray(state[k])
            if a.shape != targets[k].shape:
                raise ValueError(f"state[{k!r}]: expected shape {targets[k].shape}, got {a.shape}")
    for k in targets:
        if k in state:
            targets[k][...] = state[k]
    return missing, unexpected


def getstate(net):
    """Pickle support: the same header and arrays as a file holds (no optimizer)."""
    return _pack(net)


def setstate(net, state):
    header, arrays = state
    other = _unpack(header, arrays)
    net.__dict__.update(other.__dict__)
    net._bind_views()  # Parameters must point at this object, not at `other`


def deepcopy(net, memo=None):
    new = type(net).__new__(type(net))
    setstate(new, getstate(net))
    return new
