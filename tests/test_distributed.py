"""Data-parallel training over MPI: `mpiexec -n 2` runs of the scripts in tests/mpi_scripts,
started from pytest with a timeout, and the sharding helpers in-process (pytest itself never
initialises MPI). The MPI tests skip, saying why, only where mpi4py or mpiexec is missing
(CI installs them: pip install ".[test,mpi]")."""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nativebp as nb
from nativebp.distributed import DataParallel, epoch_order, shard_bounds

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts")
TIMEOUT = 300  # seconds for one mpiexec job; each takes about 1 s here (30 s on a machine 10x oversubscribed)
# Open MPI refuses root and more ranks than cores unless told; MPICH ignores these.
MPI_ENV = {"OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe"}


def mpiexec():
    """The mpiexec beside this Python (a venv with the mpich wheel) or on PATH; skip if none."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'nativebp[mpi]')")
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = beside if os.path.exists(beside) else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("mpi4py is installed but no mpiexec was found beside python or on PATH")
    return exe


def run_mpi(script, *args, n=2):
    """Runs `mpiexec -n n python script args`; a job still running after TIMEOUT is killed (its
    whole process group) and the test fails: nothing here may hang."""
    cmd = [mpiexec(), "-n", str(n), sys.executable, os.path.join(SCRIPTS, script), *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **MPI_ENV), start_new_session=True)
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{script} {args}: still running after {TIMEOUT} s (hung)")
    return proc.returncode, out, err, time.monotonic() - start


def run_ok(script, tmp_path):
    code, out, err, _ = run_mpi(script, tmp_path)
    assert code == 0, f"exit {code}\n{out}\n{err}"
    return out


# ------------------------------------------------------------------ in-process
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shard_bounds_split_each_batch_contiguously_and_evenly(size):
    for m in range(0, 40):
        for min_rows in (1, 2):
            parts = [shard_bounds(m, size, r, min_rows) for r in range(size)]
            rows = [i for a, b in parts for i in range(a, b)]
            assert rows == list(range(m))  # every row once, in order
            sizes = [b - a for a, b in parts if b > a]
            assert max(sizes, default=0) - min(sizes, default=0) <= 1
            if m >= min_rows:
                assert min(sizes) >= min_rows  # no non-empty shard under min_rows


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(50, 3, 1)
    assert sorted(a) == list(range(50))
    assert np.array_equal(a, epoch_order(50, 3, 1))
    assert not np.array_equal(a, epoch_order(50, 3, 2)) and not np.array_equal(a, epoch_order(50, 4, 1))
    assert np.array_equal(epoch_order(5, 3, 1, shuffle=False), np.arange(5))


def test_dataparallel_rejects_what_is_not_a_network_and_a_bad_timeout():
    with pytest.raises(TypeError, match="net: expected a nativebp.Sequential"):
        DataParallel([nb.Dense(2, 2)])
    for bad, match in ((0, "a positive number of seconds or None"), (-1.5, "a positive number"),
                       (float("nan"), "a finite number")):
        with pytest.raises(ValueError, match=f"timeout: expected {match}"):
            DataParallel(nb.Sequential([nb.Dense(2, 2)]), timeout=bad)
    with pytest.raises(TypeError, match="timeout: expected a number"):
        DataParallel(nb.Sequential([nb.Dense(2, 2)]), timeout="5")


def test_nb_distributed_loads_on_first_use_without_importing_mpi4py():
    code = ("import sys, nativebp as nb; nb.distributed.DataParallel, nb.distributed.epoch_order; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_allreduce_hook_on_one_replica_keeps_batchnorm_as_it_was_and_none_unsets_it(dtype):
    def make():
        return nb.Sequential([nb.Dense(4, 6), nb.BatchNorm1d(6), nb.ReLU(), nb.Dense(6, 2)], dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((9, 4)).astype(dtype), rng.integers(0, 2, 9)
    tol = 1e-13 if dtype == "float64" else 1e-5  # the synced sums are taken in float64
    plain, synced = make(), make()
    plain._engine.loss_and_grad(X, y, "cross_entropy")
    sizes = []
    synced._engine.set_allreduce(lambda buf: sizes.append(len(buf)))  # one replica: the sums stay
    assert synced._engine.distributed
    synced._engine.loss_and_grad(X, y, "cross_entropy")
    assert sizes == [7, 6, 12]  # forward [n, sum x], [sum (x - mean)^2]; backward [sum g, sum g xhat]
    for name in ("grad_array", "state_array"):
        u, v = getattr(plain._engine, name)(), getattr(synced._engine, name)()
        assert np.abs(u - v).max() <= tol * np.abs(u).max()
    synced._engine.set_allreduce(None)
    assert not synced._engine.distributed
    synced._engine.loss_and_grad(X, y, "cross_entropy")
    synced.forward(X)  # inference uses the running statistics: no collective either
    assert len(sizes) == 3


def test_engine_allreduce_hook_rejects_a_non_callable_and_passes_its_errors_on():
    net = nb.Sequential([nb.BatchNorm1d(3), nb.Dense(3, 1)], dtype="float64", seed=0)
    with pytest.raises(TypeError, match="allreduce: expected a callable"):
        net._engine.set_allreduce(3)
    X, y = np.ones((4, 3)), np.ones((4, 1))
    with pytest.raises(ValueError, match="grad_scale: expected a finite number >= 0"):
        net._engine.loss_and_grad(X, y, "mse", grad_scale=-1.0)

    def broken(buf):
        raise RuntimeError("link down")
    net._engine.set_allreduce(broken)
    with pytest.raises(RuntimeError, match="link down"):
        net._engine.loss_and_grad(X, y, "mse")
    net._engine.set_allreduce(None)
    assert np.isfinite(net._engine.loss_and_grad(X, y, "mse")[0])


def test_engine_takes_an_empty_shard_only_with_the_allreduce_hook_even_as_its_first_batch():
    net = nb.Sequential([nb.Dense(3, 4), nb.BatchNorm1d(4), nb.Dense(4, 1)], dtype="float32", seed=0)
    X, y = np.zeros((0, 3), np.float32), np.zeros((0, 1), np.float32)
    with pytest.raises(ValueError, match="X: expected at least one row"):
        net._engine.loss_and_grad(X, y, "mse")
    net._engine.set_allreduce(lambda buf: None)  # one replica holding no rows: N = 0 over all
    with pytest.raises(ValueError, match="BatchNorm1d: training needs more than 1 sample per batch, got 0 over all"):
        net._engine.loss_and_grad(X, y, "mse", grad_scale=0.0)


# ------------------------------------------------------------------ under mpiexec -n 2
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_same_weights_as_one_process_on_the_global_batch_batchnorm_included(tmp_path, ranks):
    code, out, err, _ = run_mpi("equivalence.py", tmp_path / "r.json", n=ranks)
    assert code == 0, f"exit {code}\n{out}\n{err}"
    r = json.loads((tmp_path / "r.json").read_text())
    # each includes a short last batch split unevenly (2 ranks: 2 + 1 rows; 3: 1 + 1 + 1, with
    # BatchNorm 1 + 1 + 0)
    for case in ("sgd", "adam", "sgd_penalties_clip", "sgd_bn", "adam_bn"):
        assert r[case]["weights"] <= 1e-10, r
        assert r[case]["spread"] == 0.0, r  # the ranks agree bit for bit
    for case in ("sgd_bn", "adam_bn", "train_step_bn"):  # synced BatchNorm: the global batch's statistics
        assert r[case]["state"] <= 1e-10, r  # running statistics as one process records them
    assert r["train_step_bn"]["weights"] <= 1e-10 and r["train_step_bn"]["loss"] <= 1e-12, r
    assert r["resume"]["weights"] <= 1e-10, r  # two fit calls continue one run (Dropout included)
    assert abs(r["resume"]["val_loss"][0] - r["resume"]["val_loss"][1]) <= 1e-10, r


def test_net_fit_distributed_equals_dataparallel_fit_and_one_process_on_global_batches(tmp_path):
    run_ok("fit_distributed.py", tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["flag_vs_dataparallel"] <= 1e-10, r  # the same run (up to rounding from buffer addresses)
    assert r["flag_vs_one_process"] <= 1e-10 and r["state_vs_one_process"] <= 1e-10, r
    assert r["same_history"] and r["spread"] == 0.0, r
    assert len(r["history"]["val_accuracy"]) == 3, r


def test_net_fit_distributed_refuses_bad_flags_and_metrics_without_validation_before_starting_mpi():
    net = nb.Sequential([nb.Dense(3, 2)], seed=0)
    X, y = np.ones((8, 3), np.float32), np.zeros(8, np.int64)
    with pytest.raises(TypeError, match="distributed: expected True or False"):
        net.fit(X, y, loss="cross_entropy", distributed="yes")
    with pytest.raises(ValueError, match="metrics: with distributed=True, metrics \\(accuracy\\) are computed on the "
                                         "validation data only"):
        net.fit(X, y, loss="cross_entropy", metrics=["acc"], distributed=True)
    with pytest.raises(ValueError, match="verbose: expected 0, 1 or 2"):
        net.fit(X, y, loss="cross_entropy", verbose=3, distributed=True)
    assert "mpi4py.MPI" not in sys.modules  # pytest itself never initialises MPI


def test_net_fit_distributed_without_mpi4py_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, nativebp as nb\n"
            "net = nb.Sequential([nb.Dense(3, 2)], seed=0)\n"
            "try:\n"
            "    net.fit(np.ones((8, 3), np.float32), np.zeros(8, np.int64), loss='cross_entropy', distributed=True)\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True).stdout
    assert 'pip install "nativebp[mpi]"' in out, out


def test_fit_on_two_ranks_trains_digits_with_callbacks_rank_0_printing_and_checkpointing(tmp_path):
    out = run_ok("fit_digits.py", tmp_path)
    r = json.loads((tmp_path / "result.json").read_text())
    assert r["histories"][0] == r["histories"][1]  # the same History on every rank
    assert r["histories"][0]["lr"] == [3e-3, 3e-3, 1.5e-3, 1.5e-3]  # StepLR; rank 1's stop after 4 epochs
    assert r["histories"][0]["val_accuracy"][-1] > 0.85
    assert r["histories"][0]["loss"][-1] < r["histories"][0]["loss"][0]
    assert r["spread"] == 0.0 and r["resyncs"] == 0
    assert r["dropout_differs"]
    assert r["checkpoint_diff"] == 0.0
    assert r["files"] == [f"ckpt-{e}.nbp" for e in (1, 2, 3, 4)] + ["result.json"]
    assert [line.split(" - ")[0] for line in out.splitlines()] == [f"Epoch {e}/6" for e in (1, 2, 3, 4)]


def test_errors_every_rank_detects_are_raised_on_every_rank_without_abort(tmp_path):
    run_ok("collective_errors.py", tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    for case, kind in (("different_data", "ValueError: fit: the ranks passed different X"),
                       ("one_row_batch", "ValueError: batch_size: the last batch would have 1 row"),
                       ("non_finite_loss", "FloatingPointError: train_step: the loss is inf"),
                       ("non_finite_summed_gradient", "FloatingPointError: train_step: the summed gradient became NaN"),
                       ("no_rows", "ValueError: X: every rank passed 0 rows"),
                       ("one_row_in_all", "ValueError: X: the ranks passed 1 row in all, and BatchNorm needs")):
        assert all(c is not None and c.startswith(kind) for c in r[case]), r[case]
    assert r["unchanged"] == [True, True]


def hydra():
    """True when mpiexec is MPICH's (hydra), whose messages on a dead rank the tests below check."""
    out = subprocess.run([mpiexec(), "--version"], capture_output=True, text=True, timeout=60).stdout
    return "HYDRA" in out


@pytest.mark.parametrize("mode", ["raise", "uncaught", "exit", "kill", "stuck"])
def test_a_failing_rank_stops_the_job_and_earlier_checkpoints_load(tmp_path, mode):
    timeout = ["2"] if mode == "stuck" else []  # DataParallel(timeout=2): only a stuck rank needs it
    code, out, err, seconds = run_mpi("failing_rank.py", tmp_path, mode, *timeout)
    assert code != 0, out + err
    assert seconds < 60, seconds  # bounded: ~0.6 s for a dead rank, ~4 s for a stuck one here
    assert "unreachable" not in out  # rank 0 did not go on training alone
    pid = dict(re.findall(r"rank (\d+) pid (\d+)", out))["1"]
    if mode in ("raise", "uncaught"):
        assert "nativebp.distributed: rank 1 of 2" in err and "injected failure" in err, err
    elif mode == "stuck":  # rank 0 waited in a collective; the timeout names the rank that never came
        assert re.search(r"nativebp.distributed: rank 0 of 2 waited 2\.\d s in the loss all-reduce at step 5; "
                         r"rank\(s\) that did not arrive: 1 \(timeout=2 s\)", err), err
    elif hydra() and mode == "exit":  # MPICH's mpiexec ends the job at once, with the dead rank's status
        assert code == 3, (code, out, err)
    elif hydra():  # killed by a signal: mpiexec names the process (its pid) and the signal
        assert f"PID {pid} RUNNING AT" in out + err and "EXIT CODE: 9" in out + err, out + err
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.nbp"]
    # the epoch-1 checkpoint equals one process's epoch on global batches of 16
    net = nb.Sequential([nb.Dense(5, 8), nb.Tanh(), nb.Dense(8, 3)], dtype="float64", seed=0)
    opt = nb.optim.SGD(net, lr=0.1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    order = epoch_order(64, 1, 0)
    for i in range(0, 64, 16):
        net.train_step(X[order[i:i + 16]], y[order[i:i + 16]], loss="cross_entropy", optimizer=opt)
    saved = nb.load(tmp_path / "ckpt-1.nbp")
    ref = net._engine.param_array()
    assert np.abs(saved._engine.param_array() - ref).max() <= 1e-10 * np.abs(ref).max()
