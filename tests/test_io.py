"""save / load, state_dict, pickle and deepcopy: bit-exact round trips, exact resumption of
training, atomic writes, and clear errors for corrupted, truncated or foreign files."""
import copy
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import nativebp as nb
from nativebp.layers import layer_from_config
from test_fit import blobs, weights

EVERY_LAYER = [nb.Dense(12, 16, init="he_normal"), nb.BatchNorm1d(16, momentum=0.2), nb.LeakyReLU(0.1),
               nb.Dropout(0.3), nb.Residual([nb.Dense(16, 16, init="uniform", init_arg=0.2), nb.LayerNorm(16),
                                             nb.ELU(0.5), nb.Softplus(2.0, 10.0)]),
               nb.Dense(16, 8, bias=False, init="normal", bias_init="zeros"), "gelu", "selu", "silu", "sigmoid",
               "tanh", "identity", nb.Dense(8, 3), nb.Softmax()]


def full_net(dtype="float32", seed=3):
    return nb.Sequential(EVERY_LAYER[:-1], dtype=dtype, seed=seed)


def trained(dtype="float32", epochs=2):
    X, y = blobs(n=64)
    net = full_net(dtype)
    opt = nb.optim.Adam(net, lr=1e-2)
    net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16, metrics=["accuracy"],
            verbose=0)
    return net, opt, X, y


def same_network(a, b):
    assert a.dtype == b.dtype and a.layers == b.layers and a.seed == b.seed
    assert a._engine.rng_state() == b._engine.rng_state()
    assert [p.trainable for p in a.parameters()] == [p.trainable for p in b.parameters()]
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


@pytest.mark.parametrize("layer", EVERY_LAYER)
def test_every_layer_config_round_trips_through_json(layer):
    layer = nb.layers.make_layer(layer)
    config = json.loads(json.dumps(layer.config()))
    assert layer_from_config(config) == layer and layer_from_config(config).config() == layer.config()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_then_load_predicts_bit_identically(tmp_path, dtype):
    net, _, X, _ = trained(dtype)
    net.parameters()[2].trainable = False
    net.save(tmp_path / "m.nbp")
    back = nb.load(tmp_path / "m.nbp")
    same_network(net, back)
    assert np.array_equal(back.predict(X), net.predict(X))
    assert back.evaluate(X, blobs(n=64)[1]) == net.evaluate(X, blobs(n=64)[1])  # the loss and metrics travel
    assert np.array_equal(back.predict_proba(X), net.predict_proba(X))
    with zipfile.ZipFile(tmp_path / "m.nbp") as z:  # the documented layout
        assert sorted(z.namelist()) == ["header.json", "params.npy", "states.npy"]
    assert np.load(tmp_path / "m.nbp")["params"].dtype == np.dtype(dtype)


def test_resumed_training_equals_uninterrupted_training_bit_for_bit(tmp_path):
    net, opt, X, y = trained(epochs=2)
    net.save(tmp_path / "ckpt.nbp", optimizer=opt)
    net2, opt2 = nb.load(tmp_path / "ckpt.nbp", with_optimizer=True)
    assert type(opt2) is nb.optim.Adam and opt2.lr == opt.lr and opt2._engine.steps == opt._engine.steps
    h2 = net2.fit(X, y, loss="cross_entropy", optimizer=opt2, epochs=2, batch_size=16, initial_epoch=2, verbose=0)
    ref, _, _, _ = trained(epochs=4)
    same_network(net2, ref)
    assert h2.epoch == [2, 3]


def test_resume_from_a_model_checkpoint_with_a_schedule(tmp_path):
    X, y = blobs(n=64)

    def run(net, opt, epochs, initial_epoch=0, callbacks=()):
        net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16, initial_epoch=initial_epoch,
                verbose=0, callbacks=[nb.schedules.StepLR(1, gamma=0.5), *callbacks])

    a = full_net()
    run(a, nb.optim.SGD(a, lr=0.1, momentum=0.9), 3, callbacks=[nb.callbacks.ModelCheckpoint(tmp_path / "c.nbp")])
    b = full_net()
    b_opt = nb.optim.SGD(b, lr=0.1, momentum=0.9)
    run(b, b_opt, 2, callbacks=[nb.callbacks.ModelCheckpoint(tmp_path / "c.nbp")])
    done = nb.io.read_header(tmp_path / "c.nbp")["meta"]["epoch"]
    b2, b2_opt = nb.load(tmp_path / "c.nbp", with_optimizer=True)
    assert done == 2 and b2_opt.initial_lr == 0.1 and b2_opt.lr == 0.05
    run(b2, b2_opt, 1, initial_epoch=done)
    same_network(a, b2)


def test_optimizer_over_some_parameters_round_trips(tmp_path):
    X, y = blobs(n=32)
    net = nb.Sequential([nb.Dense(12, 4), nb.ReLU(), nb.Dense(4, 3)])
    opt = nb.optim.RMSprop(net.parameters()[2:], lr=0.01, momentum=0.5, centered=True)
    net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, verbose=0)
    net.save(tmp_path / "m.nbp", optimizer=opt)
    net2, opt2 = nb.load(tmp_path / "m.nbp", with_optimizer=True)
    assert opt2._owned == [False, False, True, True] and opt2.defaults == opt.defaults
    for name in opt._engine.state_names():
        assert np.array_equal(opt2._engine.state_array(name), opt._engine.state_array(name))


def test_save_is_atomic_when_interrupted_midway(tmp_path, monkeypatch):
    net, opt, X, _ = trained()
    path = tmp_path / "m.nbp"
    net.save(path)
    before = path.read_bytes()
    real = np.lib.format.write_array

    def crash(f, a, **kw):
        if a.size > 100:  # after header.json and part of the archive are written
            raise KeyboardInterrupt
        return real(f, a, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(KeyboardInterrupt):
        net.save(path, optimizer=opt)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.nbp"]  # old file, no temp left


def _corrupt(path, what):
    raw = bytearray(path.read_bytes())
    if what == "truncated":
        return bytes(raw[: len(raw) * 2 // 3])
    if what == "flipped":  # one byte inside the parameter data
        at = raw.index(b"params.npy") + 300
        raw[at] ^= 0xFF
        return bytes(raw)
    return b"this is not a model file"


@pytest.mark.parametrize("what", ["truncated", "flipped", "garbage"])
def test_damaged_files_raise_value_error(tmp_path, what):
    trained()[0].save(tmp_path / "m.nbp")
    (tmp_path / "bad.nbp").write_bytes(_corrupt(tmp_path / "m.nbp", what))
    with pytest.raises(ValueError, match="bad.nbp"):
        nb.load(tmp_path / "bad.nbp")


def _rewrite(src, dst, edit_header=None, edit_arrays=None):
    with zipfile.ZipFile(src) as z:
        header = json.loads(z.read("header.json"))
        members = {n: z.read(n) for n in z.namelist() if n != "header.json"}
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(members)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("header.json", json.dumps(header))
        for n, b in members.items():
            z.writestr(n, b)


def _tamper_params(members):
    # A valid .npy with other values: only the checksum can tell.
    import io
    a = np.lib.format.read_array(io.BytesIO(members["params.npy"]))
    a[0] += 1
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    members["params.npy"] = buf.getvalue()


@pytest.mark.parametrize("header_edit, arrays_edit, match", [
    (lambda h: h.update(version=2), None, "newer nativebp"),
    (lambda h: h.update(version="1"), None, "version"),
    (lambda h: h.update(format="keras"), None, "not a nativebp model file"),
    (lambda h: h.pop("layers"), None, "lacks layers"),
    (lambda h: h["parameters"][0].update(shape=[12, 17]), None, "do not match"),
    (lambda h: h["layers"].__setitem__(0, dict(h["layers"][0], out_features=17)), None, "width 17"),
    (lambda h: h["arrays"]["params"].update(shape=[5]), None, "header says"),
    (lambda h: h.update(dtype="float64"), None, "params"),
    (None, _tamper_params, "SHA-256"),
    (None, lambda m: m.pop("states.npy"), "states"),
])
def test_inconsistent_files_raise_value_error_naming_the_problem(tmp_path, header_edit, arrays_edit, match):
    trained()[0].save(tmp_path / "m.nbp")
    _rewrite(tmp_path / "m.nbp", tmp_path / "bad.nbp", header_edit, arrays_edit)
    with pytest.raises(ValueError, match=match):
        nb.load(tmp_path / "bad.nbp")


def test_load_errors_for_missing_files_optimizers_and_bad_arguments(tmp_path):
    net = trained()[0]
    net.save(tmp_path / "m.nbp")
    with pytest.raises(FileNotFoundError):
        nb.load(tmp_path / "none.nbp")
    with pytest.raises(ValueError, match="without an optimizer"):
        nb.load(tmp_path / "m.nbp", with_optimizer=True)
    with pytest.raises(TypeError, match="path"):
        nb.load(42)
    with pytest.raises(TypeError, match="meta"):
        net.save(tmp_path / "x.nbp", meta={"f": object()})
    with pytest.raises(ValueError, match="another network"):
        net.save(tmp_path / "x.nbp", optimizer=nb.optim.SGD(full_net()))
    assert sorted(os.listdir(tmp_path)) == ["m.nbp"]


def test_pickle_and_deepcopy_give_independent_equal_networks():
    net, _, X, y = trained()
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        same_network(net, other)
        assert np.array_equal(other.predict(X), net.predict(X))
        assert all(p._net is other for p in other.parameters())
        other.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)  # trains the copy only
        assert not np.array_equal(weights(other), weights(net))


def test_state_dict_has_torch_names_copies_and_loads_back():
    net, _, X, _ = trained()
    sd = net.state_dict()
    assert list(sd)[:3] == ["0.weight", "0.bias", "1.weight"] and "1.running_mean" in sd
    assert sd["0.weight"].shape == (12, 16)
    sd["0.weight"][...] = 0  # a copy, not a view
    assert np.abs(net.parameters()[0].value).max() > 0
    fresh = full_net(seed=9)
    assert fresh.load_state_dict(net.state_dict()) == ([], [])
    assert np.array_equal(fresh.predict(X), net.predict(X))
    bad = net.state_dict()
    bad.pop("0.bias")
    bad["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match="missing keys \\['0.bias'\\], unexpected keys \\['extra'\\]"):
        fresh.load_state_dict(bad)
    assert fresh.load_state_dict(bad, strict=False) == (["0.bias"], ["extra"])
    with pytest.raises(ValueError, match="0.weight.*shape"):
        fresh.load_state_dict(dict(net.state_dict(), **{"0.weight": np.zeros((16, 12))}))
