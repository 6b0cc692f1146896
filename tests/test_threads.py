"""The engine's thread pool and its neighbours: results independent of the thread count, a forked
child that still computes, threadpoolctl control, torch in the same process in either import
order, concurrent callers, and the per-CPU engine builds chosen at import. Whatever could hang
or crash runs in a subprocess with a timeout."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import nativebp as nb
from nativebp import _core, _cpu


def _run(script, env=None, timeout=180):
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, **(env or {})))
    return res


def _mnist_net(seed=0):
    return nb.Sequential([nb.Dense(784, 256), nb.ReLU(), nb.Dense(256, 128), nb.ReLU(), nb.Dense(128, 10)],
                         seed=seed)


def _train(threads, steps=4):
    before = nb.get_num_threads()
    nb.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((256, 784), dtype=np.float32)
        y = rng.integers(0, 10, 256)
        net = _mnist_net()
        opt = nb.optim.Adam(net, lr=1e-3)
        losses = [net.train_step(X, y, loss="cross_entropy", optimizer=opt) for _ in range(steps)]
        return losses, np.concatenate([p.value.ravel() for p in net.parameters()])
    finally:
        nb.set_num_threads(before)


def test_training_is_bit_identical_at_one_and_two_threads():
    losses1, params1 = _train(1)
    losses2, params2 = _train(2)
    assert losses1 == losses2
    assert np.array_equal(params1, params2)


def test_forked_child_computes_after_the_parent_used_two_threads():
    # libgomp hangs here (a child's first parallel region waits for the parent's threads);
    # the engine's pool starts afresh in the child.
    res = _run("""
        import os, numpy as np, nativebp as nb
        nb.set_num_threads(2)
        net = nb.Sequential([nb.Dense(512, 512), nb.ReLU(), nb.Dense(512, 10)], seed=0)
        X = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
        expected = net.forward(X)               # large enough to use both threads
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(net.forward(X), expected) and nb.get_num_threads() == 2
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        print("parent", np.array_equal(net.forward(X), expected))
    """, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["child", "0", "parent", "True"]


def test_threadpoolctl_sees_and_limits_the_engine_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not hasattr(threadpoolctl, "register"):
        pytest.skip("threadpoolctl too old to register third-party libraries")
    before = nb.get_num_threads()
    nb.set_num_threads(2)
    try:
        mine = [d for d in threadpoolctl.threadpool_info() if d["internal_api"] == "nativebp"]
        assert len(mine) == 1 and mine[0]["num_threads"] == 2 and mine[0]["user_api"] == "openmp"
        assert mine[0]["engine"] == nb.build_info()["engine"]
        with threadpoolctl.threadpool_limits(limits=1):
            assert nb.get_num_threads() == 1
        assert nb.get_num_threads() == 2
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            assert nb.get_num_threads() == 1
    finally:
        nb.set_num_threads(before)


@pytest.mark.parametrize("torch_first", [True, False])
def test_torch_and_nativebp_coexist_in_either_import_order(torch_first):
    pytest.importorskip("torch")
    first, second = ("torch", "nativebp") if torch_first else ("nativebp", "torch")
    res = _run(f"""
        import os
        import {first}
        import {second}
        import numpy as np, torch, nativebp as nb
        torch.set_num_threads(2); nb.set_num_threads(2)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((256, 300), dtype=np.float32)
        y = rng.integers(0, 10, 256)
        net = nb.Sequential([nb.Dense(300, 200), nb.ReLU(), nb.Dense(200, 10)], seed=0)
        opt = nb.optim.SGD(net, lr=0.05)
        losses = [net.train_step(X, y, loss="cross_entropy", optimizer=opt) for _ in range(5)]
        W = [p.value.astype(np.float64) for p in net.parameters()]
        ref = np.maximum(X @ W[0] + W[1], 0) @ W[2] + W[3]
        t = torch.nn.functional.linear(torch.from_numpy(X), torch.from_numpy(W[0].T.astype(np.float32)))
        ok = (np.allclose(net.forward(X), ref, atol=1e-4) and losses[-1] < losses[0]
              and np.allclose(t.numpy(), X @ W[0], atol=1e-3)
              and nb.get_num_threads() == 2 and torch.get_num_threads() == 2)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.allclose(net.forward(X), ref, atol=1e-4) else 3)
        _, status = os.waitpid(pid, 0)
        print(ok, os.waitstatus_to_exitcode(status))
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "0"]


def test_concurrent_callers_on_different_networks_get_the_serial_results():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((256, 784), dtype=np.float32)
    y = rng.integers(0, 10, 256)

    def run(seed, out):
        net = _mnist_net(seed)
        opt = nb.optim.SGD(net, lr=0.01, momentum=0.9)
        for _ in range(3):
            net.train_step(X, y, loss="cross_entropy", optimizer=opt)
        out[seed] = np.concatenate([p.value.ravel() for p in net.parameters()])

    serial, parallel = {}, {}
    for s in (0, 1, 2):
        run(s, serial)
    threads = [threading.Thread(target=run, args=(s, parallel)) for s in (0, 1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in (0, 1, 2):
        assert np.array_equal(serial[s], parallel[s])


def test_thread_count_comes_from_the_environment_at_import():
    res = _run("import nativebp as nb; print(nb.get_num_threads())", env={"NATIVEBP_NUM_THREADS": "1",
                                                                           "OMP_NUM_THREADS": "2"})
    assert res.returncode == 0 and res.stdout.strip() == "1", res.stderr
    env = dict(os.environ)
    env.pop("NATIVEBP_NUM_THREADS", None)
    env["OMP_NUM_THREADS"] = "3"
    res = subprocess.run([sys.executable, "-c", "import nativebp as nb; print(nb.get_num_threads())"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "3", res.stderr


def _built_variants():
    from nativebp import _engine
    return _engine.built()


@pytest.mark.parametrize("variant", ["baseline", "avx2", "avx512"])
def test_each_engine_build_the_cpu_supports_can_be_forced_and_agrees(variant):
    if variant not in _built_variants():
        pytest.skip(f"engine variant {variant} not built")
    if variant not in _cpu.supported():
        pytest.skip(f"this CPU cannot run {variant}")
    res = _run("""
        import nativebp as nb
        from nativebp import _core
        print(nb.build_info()["engine"], _core.engine_variant(), _core.__name__)
    """, env={"NATIVEBP_ENGINE": variant})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [variant, variant, f"nativebp._core_{variant}"]


def test_engine_builds_agree_on_a_training_run():
    variants = [v for v in _built_variants() if v in _cpu.supported()]
    if len(variants) < 2:
        pytest.skip("fewer than two engine builds runnable here")
    script = """
        import numpy as np, nativebp as nb
        net = nb.Sequential([nb.Dense(50, 70), nb.Tanh(), nb.Dense(70, 3)], seed=0)
        X = np.random.default_rng(0).standard_normal((40, 50), dtype=np.float32)
        y = np.random.default_rng(1).integers(0, 3, 40)
        opt = nb.optim.Adam(net, lr=1e-2)
        for _ in range(3):
            net.train_step(X, y, loss="cross_entropy", optimizer=opt)
        print(" ".join(repr(float(v)) for v in net.forward(X).ravel()))
    """
    outs = {}
    for v in variants:
        res = _run(script, env={"NATIVEBP_ENGINE": v})
        assert res.returncode == 0, res.stderr
        outs[v] = np.array([float(t) for t in res.stdout.split()])
    for v in variants[1:]:
        np.testing.assert_allclose(outs[v], outs[variants[0]], rtol=1e-4, atol=1e-5)  # FMA vs mul+add rounding


def test_an_unknown_or_unsupported_engine_request_is_refused_by_name():
    res = _run("import nativebp", env={"NATIVEBP_ENGINE": "sse9"})
    assert res.returncode != 0 and "NATIVEBP_ENGINE" in res.stderr and "sse9" in res.stderr
