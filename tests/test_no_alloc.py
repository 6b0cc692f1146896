"""The steady-state training step allocates nothing (DESIGN.md): every malloc, calloc, realloc and
aligned allocation of every thread is counted by a small interposer (tests/helpers/alloc_counter.c,
compiled here and loaded with LD_PRELOAD into a fresh interpreter) while steps run after warm-up.

Each call from Python into the engine costs pybind11 a few small allocations of its own (its
argument vectors), so the steps themselves are isolated by running 50 of them in one call
(train_steps) and comparing with one: the 49 extra steps must add nothing. Sequential.train_step
must add nothing on top of the bare engine call either."""
import os
import platform
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""
import ctypes, sys
import numpy as np
import nativebp as nb

lib = ctypes.CDLL(None)  # the preloaded counter's symbols
lib.nbp_alloc_stop.restype = ctypes.c_long
nb.set_num_threads(int(sys.argv[1]))
rng = np.random.default_rng(0)

def count(fn, n=20):
    lib.nbp_alloc_start()
    for _ in range(n):
        fn()
    return lib.nbp_alloc_stop()

def case(name, layers, loss, batch, make_opt):
    net = nb.Sequential(layers, seed=0)
    opt = make_opt(net)
    X = rng.standard_normal((batch, net.in_features), dtype=np.float32)
    if loss == "cross_entropy":
        y = rng.integers(0, net.out_features, batch)
    else:
        y = rng.standard_normal((batch, net.out_features), dtype=np.float32)
    for _ in range(3):  # the first steps size the buffers
        net.train_step(X, y, loss=loss, optimizer=opt)
    e, oe = net._engine, opt._engine
    for steps in (1, 50):  # numpy caches small freed blocks by size: warm its cache for both result sizes
        e.train_steps(X, y, loss, 1.0, oe, None, 0.0, 0.0, 0.0, 0.0, steps, batch)
    one = count(lambda: e.train_steps(X, y, loss, 1.0, oe, None, 0.0, 0.0, 0.0, 0.0, 1, batch), n=1)
    many = count(lambda: e.train_steps(X, y, loss, 1.0, oe, None, 0.0, 0.0, 0.0, 0.0, 50, batch), n=1)
    engine = count(lambda: e.train_step(X, y, loss, 1.0, oe, None, 0.0, 0.0, 0.0, 0.0))
    public = count(lambda: net.train_step(X, y, loss=loss, optimizer=opt))
    print(name, one, many, engine, public, flush=True)

adam = lambda net: nb.optim.Adam(net, lr=1e-3)
sgdm = lambda net: nb.optim.SGD(net, lr=0.01, momentum=0.9)
case("mnist", [nb.Dense(784, 256), nb.ReLU(), nb.Dense(256, 128), nb.ReLU(), nb.Dense(128, 10)],
     "cross_entropy", 128, adam)
case("wide", [nb.Dense(512, 512), nb.ReLU(), nb.Dense(512, 512), nb.ReLU(), nb.Dense(512, 10)],
     "cross_entropy", 256, sgdm)
case("deep", sum([[nb.Dense(64, 64), nb.Tanh()] for _ in range(8)], []) + [nb.Dense(64, 1)], "mse", 32, adam)
case("tiny", [nb.Dense(10, 64), nb.ReLU(), nb.Dense(64, 2)], "mse", 100, lambda net: nb.optim.SGD(net, lr=0.01))
"""


# The counter replaces malloc through LD_PRELOAD, which under the sanitizer job already holds ASan's
# runtime (its own allocator): the two cannot both come first.
pytestmark = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                                reason="the allocation counter and AddressSanitizer both need LD_PRELOAD's malloc")


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc" or cc is None:
        pytest.skip("the allocation counter needs Linux, glibc and a C compiler")
    out = tmp_path_factory.mktemp("alloc") / "alloc_counter.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", os.path.join(HERE, "helpers", "alloc_counter.c"), "-o", str(out)],
                   check=True)
    return str(out)


def _run(counter, threads):
    env = dict(os.environ, LD_PRELOAD=counter)
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(threads)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.strip().splitlines()]
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


@pytest.mark.parametrize("threads", [1, 2])
def test_steady_state_train_step_allocates_nothing(counter, threads):
    counts = _run(counter, threads)
    assert set(counts) == {"mnist", "wide", "deep", "tiny"}
    for name, (one, many, engine, public) in counts.items():
        assert many == one, f"{name}: 49 extra steps in one call allocated {many - one} times at {threads} threads"
        assert public == engine, (f"{name}: Sequential.train_step allocated {public} times in 20 calls, the bare "
                                  f"engine call {engine} at {threads} threads")


def test_the_counter_sees_allocations_in_the_engine(counter):
    # A larger batch than any before must grow the buffers: the counter has to notice.
    script = r"""
import ctypes, numpy as np, nativebp as nb
lib = ctypes.CDLL(None); lib.nbp_alloc_stop.restype = ctypes.c_long
net = nb.Sequential([nb.Dense(8, 16), nb.ReLU(), nb.Dense(16, 2)]); opt = nb.optim.SGD(net, lr=0.1)
X = np.ones((4, 8), np.float32); y = np.ones((4, 2), np.float32)
net.train_step(X, y, loss="mse", optimizer=opt)
X2 = np.ones((400, 8), np.float32); y2 = np.ones((400, 2), np.float32)
e, oe = net._engine, opt._engine
lib.nbp_alloc_start(); e.train_step(X2, y2, "mse", 1.0, oe, None, 0.0, 0.0, 0.0, 0.0); print(lib.nbp_alloc_stop())
"""
    res = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, LD_PRELOAD=counter),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) > 0
