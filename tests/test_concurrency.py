"""Threads and signals: the GIL is released during compute, several threads may predict with one
network, concurrent training on one network is serialised by the network's lock (no update lost,
no memory corrupted), and Ctrl-C stops a long run promptly with the network still usable."""
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nativebp as nb


def wide_net(seed=0):
    return nb.Sequential([nb.Dense(256, 512), nb.ReLU(), nb.Dense(512, 512), nb.ReLU(), nb.Dense(512, 10)], seed=seed)


def progress_during(call):
    """Runs call() in a thread; returns (Python loop iterations the main thread made while the
    call was inside the engine, seconds the call took)."""
    inside, done = threading.Event(), threading.Event()

    def work():
        inside.set()
        call()
        done.set()
    t = threading.Thread(target=work)
    t.start()
    inside.wait()
    start, count = time.perf_counter(), 0
    while not done.is_set():
        count += 1
    elapsed = time.perf_counter() - start
    t.join()
    return count, elapsed


@pytest.mark.parametrize("what", ["forward", "train_step", "loss_and_grad", "fit", "gradcheck"])
def test_the_gil_is_released_while_the_engine_computes(what):
    net = wide_net()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 256)).astype(np.float32)
    y = rng.integers(0, 10, 2048)
    opt = nb.optim.SGD(net, lr=1e-3)
    small = nb.Sequential([nb.Dense(8, 8), nb.Tanh(), nb.Dense(8, 2)], dtype="float64")
    calls = {
        "forward": lambda: [net.forward(X) for _ in range(3)],
        "train_step": lambda: [net.train_step(X, y, loss="cross_entropy", optimizer=opt) for _ in range(2)],
        "loss_and_grad": lambda: [net.loss_and_grad(X, y, loss="cross_entropy") for _ in range(2)],
        "fit": lambda: net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=256, verbose=0),
        "gradcheck": lambda: [nb.gradcheck(small, rng.standard_normal((64, 8)), rng.standard_normal((64, 2)))
                              for _ in range(20)],
    }
    count, elapsed = progress_during(calls[what])
    # With the GIL held the main thread would only run between calls (a few switch intervals);
    # released, it spins freely: well over a million iterations per second on any machine.
    assert elapsed > 0.05, f"the call was too short to tell ({elapsed:.3f} s)"
    assert count / elapsed > 20_000, f"main thread made {count} iterations in {elapsed:.3f} s"


def test_predict_from_eight_threads_on_one_network_gives_the_sequential_results():
    net = nb.Sequential([nb.Dense(16, 64), nb.GELU(), nb.LayerNorm(64), nb.Dense(64, 4)], seed=1)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((int(rng.integers(1, 300)), 16)).astype(np.float32) for _ in range(64)]
    expected = [net.predict(X) for X in inputs]
    results, errors = {}, []

    def worker(k):
        try:
            for rep in range(10):
                for i in range(k, len(inputs), 8):
                    results[(i, rep)] = net.predict(inputs[i])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 64 * 10
    for (i, _), out in results.items():
        # equal to rounding: the engine's buffers grow (and realign) with the largest batch seen
        np.testing.assert_allclose(out, expected[i], rtol=1e-6, atol=1e-6)


def test_two_threads_training_one_network_are_serialised_and_lose_no_update():
    """Each train_step holds the network's lock: 2 x 150 concurrent steps advance the optimizer's
    step count by exactly 300, the weights stay finite, and a predicting third thread only ever
    sees finite outputs."""
    net = nb.Sequential([nb.Dense(32, 64), nb.ReLU(), nb.Dense(64, 3)], seed=2)
    opt = nb.optim.Adam(net, lr=1e-3)
    rng = np.random.default_rng(2)
    data = [(rng.standard_normal((64, 32)).astype(np.float32), rng.integers(0, 3, 64)) for _ in range(2)]
    errors, stop = [], threading.Event()

    def train(X, y):
        try:
            for _ in range(150):
                assert np.isfinite(net.train_step(X, y, loss="cross_entropy", optimizer=opt))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def watch():
        try:
            while not stop.is_set():
                assert np.isfinite(net.predict(data[0][0])).all()
        except Exception as e:  # pragma: no cover
            errors.append(e)
    threads = [threading.Thread(target=train, args=d) for d in data] + [threading.Thread(target=watch)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join()
    stop.set()
    threads[2].join()
    assert not errors
    assert list(opt.state_dict()["steps"]) == [300] * len(net.parameters())
    assert all(np.isfinite(p.value).all() for p in net.parameters())


def test_two_threads_fitting_one_network_both_finish_with_finite_weights():
    net = nb.Sequential([nb.Dense(8, 16), nb.Tanh(), nb.Dense(16, 2)], seed=3)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((512, 8)), rng.integers(0, 2, 512)
    opt, errors = nb.optim.SGD(net, lr=0.01), []

    def fit():
        try:
            net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=16, verbose=0)
        except Exception as e:  # pragma: no cover
            errors.append(e)
    threads = [threading.Thread(target=fit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(opt.state_dict()["steps"]) == [2 * 3 * 32] * 4  # 2 fits x 3 epochs x 32 batches
    assert all(np.isfinite(p.value).all() for p in net.parameters())


def test_networks_in_different_threads_do_not_interfere():
    """Same seed and data in four threads at once give the same weights: no shared state."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((256, 8)).astype(np.float32), rng.integers(0, 3, 256)
    nets = [nb.Sequential([nb.Dense(8, 32), nb.ReLU(), nb.Dropout(0.2), nb.Dense(32, 3)], seed=7) for _ in range(4)]
    old = nb.get_num_threads()
    nb.set_num_threads(1)
    try:
        def run(net):
            opt = nb.optim.Adam(net, lr=1e-2)
            for _ in range(50):
                net.train_step(X, y, loss="cross_entropy", optimizer=opt)
        threads = [threading.Thread(target=run, args=(n,)) for n in nets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        nb.set_num_threads(old)
    # bit-equal: shared state (a generator, a buffer) would change dropout masks, i.e. everything
    for other in nets[1:]:
        for p, q in zip(nets[0].parameters(), other.parameters()):
            np.testing.assert_array_equal(p.value, q.value)


def test_set_num_threads_applies_to_engine_calls_from_other_threads():
    """set_num_threads is process-wide: a thread started afterwards sees the same count."""
    old = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        seen = []
        t = threading.Thread(target=lambda: seen.append(nb.get_num_threads()))
        t.start()
        t.join()
        assert seen == [1]
    finally:
        nb.set_num_threads(old)


# ------------------------------------------------------------------------------ Ctrl-C
LONG_LOOP = textwrap.dedent("""
    import signal, sys, numpy as np, nativebp as nb
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores SIGINT
    net = nb.Sequential([nb.Dense(256, 512), nb.ReLU(), nb.Dense(512, 10)], seed=0)
    opt = nb.optim.SGD(net, lr=1e-3)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4096, 256)).astype(np.float32), rng.integers(0, 10, 4096)
    print("ready", flush=True)
    try:
        if sys.argv[1] == "train_step":
            while True:
                net.train_step(X, y, loss="cross_entropy", optimizer=opt)
        else:
            h = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=10**9, batch_size=32, verbose=0)
            assert h.interrupted, "fit returned without being interrupted"
            print("fit returned interrupted", flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    out = net.predict(X[:8])
    assert np.isfinite(out).all()
    net.train_step(X[:32], y[:32], loss="cross_entropy", optimizer=opt)  # still usable
    print("usable", flush=True)
""")


@pytest.mark.parametrize("how", ["train_step", "fit"])
def test_ctrl_c_stops_a_long_run_promptly_and_leaves_a_usable_network(how):
    p = subprocess.Popen([sys.executable, "-c", LONG_LOOP, how], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # well inside the loop
        sent = time.perf_counter()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        elapsed = time.perf_counter() - sent
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert ("KeyboardInterrupt" if how == "train_step" else "fit returned interrupted") in out
    assert "usable" in out
    assert elapsed < 5.0, f"took {elapsed:.1f} s to stop"  # generous for a loaded CI machine; typically < 0.2 s
