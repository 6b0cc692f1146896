"""fit / evaluate / predict_proba: accuracy on digits, exact reproducibility and resumption,
metrics against numpy, validation, Ctrl-C, divergence and bad arguments."""
import os
import signal
import threading

import numpy as np
import pytest

import nativebp as nb
from nativebp.demo import build_network


@pytest.fixture
def threads():
    """Sets the engine's thread count for one test and restores it afterwards."""
    before = nb.get_num_threads()
    yield nb.set_num_threads
    nb.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return nb.datasets.load_digits_split()


def blobs(n=192, d=12, k=3, seed=0):
    """Seeded float32 Gaussian blobs with k classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.standard_normal((n, d)) + 2.0 * np.eye(k, d)[y]
    return X.astype(np.float32), y


def small_net(seed=0, d=12, k=3, dtype="float32"):
    return nb.Sequential([nb.Dense(d, 16), nb.ReLU(), nb.Dropout(0.2), nb.Dense(16, k)], dtype=dtype, seed=seed)


def weights(net):
    return net._engine.param_array().copy()


def _grads(net, X, y):
    net.zero_grad()
    net.loss_and_grad(X, y, loss="cross_entropy")
    return net._engine.grad_array().tobytes()


def _bits_at_shifted_heap_addresses(make, run):
    """The results of identical fresh networks, each built after the heap was shifted a little."""
    X, y = blobs(n=32)
    seen, junk = set(), []
    for i in range(32):
        junk.append(bytearray(1000 + 8 * i))
        seen.add(run(make(), X, y))
    return seen


@pytest.mark.parametrize("make", [
    lambda: nb.Sequential([nb.Dense(12, 128), nb.ReLU(), nb.Dense(128, 3)]),
    lambda: nb.Sequential([nb.Dense(12, 16), nb.LayerNorm(16), nb.Softmax(), nb.Dense(16, 3)]),
    lambda: nb.Sequential([nb.Dense(12, 16), nb.BatchNorm1d(16), nb.Tanh(), nb.Dense(16, 3)]),
], ids=["dense", "layernorm_softmax", "batchnorm"])
def test_identical_networks_give_identical_bits_wherever_their_buffers_sit(make):
    """Eigen's vectorised reductions (a bias gradient's column sums, LayerNorm's and Softmax's row
    sums) start at the first aligned element: the engine's buffers are 64-byte aligned so that
    where malloc puts them cannot change the summation order."""
    seen = _bits_at_shifted_heap_addresses(make, lambda net, X, y: net.predict(X).tobytes() + _grads(net, X, y))
    assert len(seen) == 1, f"{len(seen)} different results from 32 identical networks"


@pytest.mark.parametrize("n_threads", [1, 2])
def test_two_fits_with_the_same_seed_are_bit_identical(n_threads, threads):
    threads(n_threads)
    X, y = blobs()
    runs = []
    for _ in range(2):
        net = small_net()
        h = net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net, lr=1e-2), epochs=3, batch_size=16,
                    seed=7, metrics=["accuracy"], verbose=0)
        runs.append((weights(net), h.history))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = small_net()
    other.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(other, lr=1e-2), epochs=3, batch_size=16, seed=8,
              verbose=0)
    assert not np.array_equal(weights(other), runs[0][0])  # the seed does pick the batches


def test_two_half_fits_equal_one_fit_bit_for_bit():
    X, y = blobs()
    a = small_net()
    opt_a = nb.optim.Adam(a, lr=1e-2)
    h1 = a.fit(X, y, loss="cross_entropy", optimizer=opt_a, epochs=2, batch_size=16, verbose=0)
    h2 = a.fit(X, y, loss="cross_entropy", optimizer=opt_a, epochs=2, batch_size=16, initial_epoch=2, verbose=0)
    b = small_net()
    h = b.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(b, lr=1e-2), epochs=4, batch_size=16, verbose=0)
    assert np.array_equal(weights(a), weights(b))
    assert h1.epoch + h2.epoch == h.epoch == [0, 1, 2, 3]
    assert h1["loss"] + h2["loss"] == h["loss"]


def test_fit_without_optimizer_reuses_the_first_adam_across_calls():
    X, y = blobs()
    a, b = small_net(), small_net()
    a.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)
    a.fit(X, y, loss="cross_entropy", epochs=1, initial_epoch=1, verbose=0)
    b.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(b, lr=1e-3), epochs=2, verbose=0)
    assert np.array_equal(weights(a), weights(b))


def test_fit_equals_a_loop_of_train_steps_with_penalties_and_clipping():
    X, y = blobs(n=64)
    a, b = small_net(), small_net()
    kw = dict(l1=1e-3, l2=1e-2, clip_norm=0.5, clip_value=0.1)
    a.fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(a, lr=0.1, momentum=0.9), epochs=3, batch_size=32,
          shuffle=False, verbose=0, **kw)
    opt = nb.optim.SGD(b, lr=0.1, momentum=0.9)
    for _ in range(3):
        for i in (0, 32):
            b.train_step(X[i:i + 32], y[i:i + 32], loss="cross_entropy", optimizer=opt, **kw)
    assert np.array_equal(weights(a), weights(b))


def test_history_has_one_value_per_epoch_for_loss_metrics_validation_and_lr():
    X, y = blobs()
    net = small_net()
    h = net.fit(X, y, loss="cross_entropy", epochs=3, metrics=["acc"], validation_data=blobs(seed=1), verbose=0,
                initial_epoch=5)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 3 for v in h.history.values()) and h.epoch == [5, 6, 7]
    assert h["lr"] == [1e-3] * 3 and not h.interrupted and len(h) == 3
    assert net.history is h and "loss=" in repr(h)


def test_training_metrics_average_the_batches_and_match_numpy_when_weights_stay_fixed():
    # lr = 0 keeps the weights fixed, so the epoch's batch-averaged metrics are full-data ones.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 5))
    Y = rng.standard_normal((100, 2))
    net = nb.Sequential([nb.Dense(5, 8), nb.Tanh(), nb.Dense(8, 2)], dtype="float64", seed=1)
    h = net.fit(X, Y, loss="mse", optimizer=nb.optim.SGD(net, lr=0.0), epochs=1, batch_size=32,
                metrics=["mse", "mae", "accuracy"], verbose=0)
    Z = net.predict(X)
    assert h["loss"][0] == pytest.approx(np.mean((Z - Y) ** 2), rel=1e-12)
    assert h["mse"][0] == pytest.approx(np.mean((Z - Y) ** 2), rel=1e-12)
    assert h["mae"][0] == pytest.approx(np.mean(np.abs(Z - Y)), rel=1e-12)
    assert h["accuracy"][0] == pytest.approx(np.mean(Z.argmax(1) == Y.argmax(1)))


def test_evaluate_matches_numpy_cross_entropy_and_accuracy():
    X, y = blobs(n=50)
    net = small_net(dtype="float64")
    net.fit(X, y, loss="cross_entropy", epochs=2, verbose=0, metrics=["accuracy"])
    Z = net.predict(X)
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    r = net.evaluate(X, y, batch_size=7)
    assert set(r) == {"loss", "accuracy"}
    assert r["loss"] == pytest.approx(-logp[np.arange(50), y].mean(), rel=1e-12)
    assert r["accuracy"] == np.mean(Z.argmax(1) == y)
    assert set(net.evaluate(X, y, metrics=[])) == {"loss"}


def test_evaluate_mse_and_mae_match_numpy():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    net = nb.Sequential([nb.Dense(3, 4), nb.ReLU(), nb.Dense(4, 1)], dtype="float64")
    r = net.evaluate(X, Y[:, 0], loss="huber", metrics=["mse", "mae"], delta=0.5)
    d = net.predict(X) - Y
    huber = np.where(np.abs(d) <= 0.5, 0.5 * d ** 2, 0.5 * (np.abs(d) - 0.25))
    assert r["loss"] == pytest.approx(huber.mean(), rel=1e-12)
    assert r["mse"] == pytest.approx(np.mean(d ** 2), rel=1e-12)
    assert r["mae"] == pytest.approx(np.mean(np.abs(d)), rel=1e-12)


def test_only_the_requested_metrics_are_logged():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    net = nb.Sequential([nb.Dense(3, 2)], dtype="float64")
    h = net.fit(X, Y, loss="mse", metrics=["mae"], validation_split=0.25, epochs=1, verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae", "lr"}
    assert set(net.evaluate(X, Y)) == {"loss", "mae"} and set(net.evaluate(X, Y, metrics=["mse"])) == {"loss", "mse"}


def test_validation_split_trains_on_the_first_rows_and_validates_on_the_last():
    X, y = blobs(n=100)
    a, b = small_net(), small_net()
    h = a.fit(X, y, loss="cross_entropy", epochs=2, validation_split=0.25, metrics=["accuracy"], verbose=0)
    b.fit(X[:75], y[:75], loss="cross_entropy", epochs=2, verbose=0)
    assert np.array_equal(weights(a), weights(b))
    assert h.params["samples"] == 75
    last = a.evaluate(X[75:], y[75:])
    assert h["val_loss"][-1] == last["loss"] and h["val_accuracy"][-1] == last["accuracy"]


def test_validation_does_not_change_the_training_trajectory():
    X, y = blobs()
    a, b = small_net(), small_net()
    a.fit(X, y, loss="cross_entropy", epochs=2, verbose=0, validation_data=blobs(seed=2))
    b.fit(X, y, loss="cross_entropy", epochs=2, verbose=0)
    assert np.array_equal(weights(a), weights(b))


def test_keyboard_interrupt_in_a_callback_stops_cleanly_and_keeps_the_weights(capsys):
    X, y = blobs()

    def ctrl_c(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    a, b = small_net(), small_net()
    h = a.fit(X, y, loss="cross_entropy", epochs=10, callbacks=[ctrl_c], verbose=2)
    assert h.interrupted and h.epoch == [0, 1, 2]
    assert "interrupted" in capsys.readouterr().out
    b.fit(X, y, loss="cross_entropy", epochs=3, verbose=0)
    assert np.array_equal(weights(a), weights(b))


def test_sigint_during_fit_returns_the_history_so_far():
    X, y = blobs(n=64)
    net = small_net()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        h = net.fit(X, y, loss="cross_entropy", epochs=10**6, verbose=0)
    finally:
        timer.cancel()
        timer.join()
    assert h.interrupted and 0 < len(h) < 10**6
    assert np.isfinite(weights(net)).all()
    net.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)  # the network is still usable


def test_non_finite_loss_raises_and_keeps_the_last_finite_weights():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((64, 3)).astype(np.float32), rng.standard_normal((64, 1)).astype(np.float32)
    X[50] = 3e38  # with unit weights the output overflows float32 in the 4th batch (rows 48..63)
    a, b = nb.Sequential([nb.Dense(3, 1)], seed=0), nb.Sequential([nb.Dense(3, 1)], seed=0)
    for net in (a, b):
        net.parameters()[0].value[...] = 1.0
    with pytest.raises(FloatingPointError, match="epoch 0 after 3 finite batches") as e:
        a.fit(X, Y, loss="mse", optimizer=nb.optim.SGD(a, lr=0.01), epochs=5, batch_size=16, shuffle=False,
              verbose=0)
    assert len(e.value.history) == 0
    b.fit(X[:48], Y[:48], loss="mse", optimizer=nb.optim.SGD(b, lr=0.01), epochs=1, batch_size=16, shuffle=False,
          verbose=0)
    assert np.isfinite(weights(a)).all() and np.array_equal(weights(a), weights(b))


def test_predict_proba_is_softmax_or_sigmoid_of_the_logits():
    X, y = blobs(n=30)
    net = small_net(dtype="float64")
    with pytest.raises(ValueError, match="has not been fit"):
        net.predict_proba(X)
    net.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)
    Z, P = net.predict(X), net.predict_proba(X)
    assert np.allclose(P, np.exp(Z) / np.exp(Z).sum(1, keepdims=True), rtol=1e-12)
    assert np.allclose(net.predict_proba(X, loss="binary_cross_entropy"), 1 / (1 + np.exp(-Z)), rtol=1e-12)
    with pytest.raises(ValueError, match="not class scores"):
        net.predict_proba(X, loss="mse")
    big = nb.Sequential([nb.Dense(12, 1)], dtype="float64")
    big.parameters()[0].value[...] = 1e3  # logits of +-1e4: no overflow warnings (they are errors here)
    p = big.predict_proba(X, loss="binary_cross_entropy")
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    soft = nb.Sequential([nb.Dense(12, 3), nb.Softmax()])
    assert np.array_equal(soft.predict_proba(X), soft.predict(X))


def test_progress_output_for_each_verbosity(capsys):
    X, y = blobs(n=32)
    small_net().fit(X, y, loss="cross_entropy", epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    small_net().fit(X, y, loss="cross_entropy", epochs=2, verbose=2, metrics=["accuracy"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "accuracy:" in lines[1] and "samples/s" in lines[1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(metrics=["f1"]), ValueError, "metrics"),
    (dict(metrics=["mse"]), ValueError, "metrics: 'mse'"),
    (dict(validation_split=1.5), ValueError, "validation_split"),
    (dict(validation_split=0.1, validation_data=blobs(n=8)), ValueError, "not both"),
    (dict(validation_data=[1, 2, 3]), TypeError, "validation_data"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(verbose=5), ValueError, "verbose"),
    (dict(clip_norm=-1.0), ValueError, "clip_norm"),
    (dict(l2=-1.0), ValueError, "l2"),
    (dict(optimizer="adam"), TypeError, "optimizer"),
    (dict(callbacks=[3]), TypeError, "callbacks"),
    (dict(loss="hinge"), ValueError, "loss"),
])
def test_fit_rejects_bad_arguments_with_a_clear_error(kwargs, error, match):
    X, y = blobs(n=32)
    kwargs = {"loss": "cross_entropy", "verbose": 0, **kwargs}
    with pytest.raises(error, match=match):
        small_net().fit(X, y, **kwargs)


def test_fit_rejects_an_optimizer_of_another_network():
    X, y = blobs(n=32)
    with pytest.raises(ValueError, match="another network"):
        small_net().fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(small_net()), verbose=0)
