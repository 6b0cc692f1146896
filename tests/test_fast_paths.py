"""The fast paths around the engine: arrays that already are what the engine takes skip the Python
checks (one C++ pass checks dtype, layout, shape, finiteness and label range instead), and
train_steps runs many steps in one call. Both must give exactly what the checked paths give."""
import numpy as np
import pytest

import nativebp as nb


def _net(dtype="float32", seed=0):
    return nb.Sequential([nb.Dense(6, 16), nb.ReLU(), nb.Dense(16, 3)], dtype=dtype, seed=seed)


def _data(n=50, dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 6)).astype(dtype), rng.integers(0, 3, n)


def _params(net):
    return np.concatenate([p.value.ravel() for p in net.parameters()])


def test_train_steps_matches_train_step_batch_by_batch():
    X, y = _data(50)
    a, b = _net(), _net()
    oa, ob = nb.optim.Adam(a, lr=1e-2), nb.optim.Adam(b, lr=1e-2)
    losses = a.train_steps(X, y, loss="cross_entropy", optimizer=oa, steps=7, batch_size=16)
    expected = []
    for s in range(7):  # batches of 16, 16, 16, 2 rows, then again from the start
        i = (s % 4) * 16
        expected.append(b.train_step(X[i:i + 16], y[i:i + 16], loss="cross_entropy", optimizer=ob))
    assert losses.dtype == np.float64 and losses.shape == (7,)
    assert losses.tolist() == expected
    assert np.array_equal(_params(a), _params(b))


def test_train_steps_defaults_to_one_full_batch_and_zero_steps_is_a_no_op():
    X, y = _data(20)
    net = _net()
    opt = nb.optim.SGD(net, lr=0.1)
    before = _params(net)
    assert net.train_steps(X, y, loss="cross_entropy", optimizer=opt, steps=0).shape == (0,)
    assert np.array_equal(before, _params(net))
    ref = _net()
    ref_loss = ref.train_step(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(ref, lr=0.1))
    assert net.train_steps(X, y, loss="cross_entropy", optimizer=opt).tolist() == [ref_loss]


def test_train_steps_stops_at_the_first_non_finite_loss_and_skips_that_step():
    X, y = _data(20)
    Y = y[:, None].astype(np.float32)
    X[15, :] = 3e38  # the second batch of 10 overflows float32 in the forward pass: its loss is infinite
    net, ref = nb.Sequential([nb.Dense(6, 1)], seed=0), nb.Sequential([nb.Dense(6, 1)], seed=0)
    opt, ref_opt = nb.optim.SGD(net, lr=0.01), nb.optim.SGD(ref, lr=0.01)
    with pytest.raises(FloatingPointError, match="at step 1"):
        net.train_steps(X, Y, loss="mse", optimizer=opt, steps=5, batch_size=10)
    ref.train_step(X[:10], Y[:10], loss="mse", optimizer=ref_opt)  # only step 0 counts
    assert np.array_equal(_params(net), _params(ref)) and np.isfinite(_params(net)).all()


def test_train_steps_rejects_bad_counts_by_name():
    X, y = _data(10)
    net = _net()
    opt = nb.optim.SGD(net, lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        net.train_steps(X, y, loss="cross_entropy", optimizer=opt, steps=-1)
    with pytest.raises(ValueError, match="batch_size"):
        net.train_steps(X, y, loss="cross_entropy", optimizer=opt, steps=1, batch_size=0)
    with pytest.raises(TypeError, match="optimizer"):
        net.train_steps(X, y, loss="cross_entropy", steps=1)


@pytest.mark.parametrize("convert", [
    lambda X: X.astype(np.float64),          # cast
    lambda X: np.asfortranarray(X),          # not C-contiguous
    lambda X: X.tolist(),                    # not an array
])
def test_ready_and_converted_inputs_train_identically(convert):
    X, y = _data(30)
    fast, slow = _net(), _net()
    of, os_ = nb.optim.Adam(fast, lr=1e-2), nb.optim.Adam(slow, lr=1e-2)
    for _ in range(3):
        lf = fast.train_step(X, y, loss="cross_entropy", optimizer=of)
        ls = slow.train_step(convert(X), y.tolist(), loss="cross_entropy", optimizer=os_)
        assert lf == ls
    assert np.array_equal(_params(fast), _params(slow))
    assert np.array_equal(fast.forward(X), slow.forward(convert(X)))


def test_batch_ok_accepts_only_exact_finite_in_range_inputs():
    net = _net()
    e = net._engine
    X, y = _data(8)
    Y = np.zeros((8, 3), np.float32)
    assert e.batch_ok(X, None, False) and e.batch_ok(X, y, True) and e.batch_ok(X, Y, False)
    assert not e.batch_ok(X, y, False)                                  # labels where the loss takes none
    bad = X.copy(); bad[3, 2] = np.nan
    assert not e.batch_ok(bad, None, False)
    bad[3, 2] = -np.inf
    assert not e.batch_ok(bad, None, False)
    assert not e.batch_ok(X, np.where(y == 0, 3, y), True)              # label out of range
    assert not e.batch_ok(X, -y - 1, True)
    assert not e.batch_ok(X.astype(np.float64), None, False)            # dtype
    assert not e.batch_ok(np.asfortranarray(X), None, False)            # layout
    assert not e.batch_ok(X[:, :5], None, False)                        # width
    assert not e.batch_ok(X[:0], None, False)                           # no rows
    assert not e.batch_ok(X, y[:7], True)                               # length
    Ynan = Y.copy(); Ynan[0, 0] = np.inf
    assert not e.batch_ok(X, Ynan, False)
    raw = np.zeros(8 * 6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(8, 6)  # misaligned
    assert not raw.flags.aligned and not e.batch_ok(raw, None, False)


def test_nan_in_ready_arrays_still_raises_the_documented_error():
    X, y = _data(8)
    X[2, 1] = np.nan
    net = _net()
    with pytest.raises(ValueError, match=r"X: expected finite numbers, got nan at index \(2, 1\)"):
        net.train_step(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(net, lr=0.1))
    with pytest.raises(ValueError, match="finite"):
        net.forward(X)
