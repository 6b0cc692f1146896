"""Data-parallel training over MPI (mpi4py): every rank holds a replica of the network, trains on
its shard of each global batch, and one in-place all-reduce of the flat gradient buffer gives
every rank the same gradient, hence the same optimizer step.

    # train.py -- run with:  mpiexec -n 4 python train.py   (pip install "nativebp[mpi]")
    import nativebp as nb
    net = nb.Sequential([nb.Dense(784, 256), nb.ReLU(), nb.Dense(256, 10)], seed=0)
    dp = nb.distributed.DataParallel(net)                  # rank 0's weights go to every rank
    dp.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net), epochs=5, batch_size=128)
    # or, the same: net.fit(X, y, loss="cross_entropy", epochs=5, batch_size=128, distributed=True)

What it promises (N ranks, ``batch_size=B`` per rank, every rank passing the same full X, y):
- The weights equal those of one process stepping on global batches of N*B rows, the batches and
  their order being ``epoch_order(len(X), seed, epoch)`` cut into runs of N*B rows; rank r trains
  on the r-th contiguous part of each (``shard_bounds``). A short last batch is split as evenly
  as possible (a rank may get 1 row, or none). Each rank's loss gradient dL/dZ is scaled by its
  share n_r/N of the rows, so the plain sum over the ranks is the global mean's gradient.
- BatchNorm is synced: in training every BatchNorm1d normalises with the *global* batch's mean
  and biased variance, the engine summing the count and per-feature sums over the ranks (two
  small all-reduces in forward, one in backward, from inside the C++ step through
  ``Network.set_allreduce``); the running statistics are the global batch's too (unbiased
  N/(N-1)). So N ranks equal one process on the global batch, BatchNorm included (float64: to
  ~1e-15). A rank with no rows in a short last batch still joins those sums. The hook is set
  only during ``fit``/``train_step``, so the network alone (``net.fit``) never waits for others.
- Dropout: each rank's generator is reseeded from (seed, rank), so masks differ between ranks.
- Only rank 0 prints and writes checkpoints (``ModelCheckpoint``); every method returns the same
  values on all ranks.
- An exception on one rank (inside fit/train_step, or uncaught anywhere once a DataParallel
  exists) prints the rank and the error and calls ``MPI.Abort``, so the others stop instead of
  waiting forever in a collective. Errors every rank detects together (a non-finite loss,
  mismatched data) are raised on every rank without aborting. A rank that dies (killed,
  ``os._exit``) is caught by the launcher: MPICH's mpiexec ends the job at once. A rank alive but
  stuck (never arriving at the next collective) is caught by ``DataParallel(..., timeout=s)``.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import traceback
import zlib

import numpy as np

from ._checks import check_int, check_loss, check_number
from .training import _check_metrics as _metrics, _clip  # the same argument checks as fit

__all__ = ["DataParallel", "data_parallel", "epoch_order", "shard_bounds", "rank", "size"]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"nativebp.distributed needs mpi4py and an MPI library: pip install \"nativebp[mpi]\" "
                          f"(mpi4py + mpich), then run under mpiexec -n N ({e})") from None
    return MPI


def rank():
    """This process's rank in MPI.COMM_WORLD (0 when run without mpiexec)."""
    return _mpi().COMM_WORLD.Get_rank()


def size():
    """The number of ranks in MPI.COMM_WORLD (1 when run without mpiexec)."""
    return _mpi().COMM_WORLD.Get_size()


def epoch_order(n, seed, epoch, shuffle=True):
    """The row order of one epoch: a permutation drawn from (seed, epoch) alone, so a resumed run
    (``initial_epoch=k``) and any number of ranks see the same batches."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def shard_bounds(m, size, rank, min_rows=1):
    """Rows [start, stop) of an m-row global batch that `rank` of `size` trains on: contiguous,
    as equal as possible (the first ones take one more). A short batch goes to fewer ranks when
    needed so that no non-empty shard has under ``min_rows`` rows."""
    active = max(1, min(size, m // min_rows))
    if rank >= active:
        return m, m
    base, extra = divmod(m, active)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def _everywhere(err):
    """Marks an error that every rank raises together (no abort needed)."""
    err.all_ranks = True
    return err


# Before MPI.Abort: the launcher forwards our stderr asynchronously and stops doing so when the
# job is killed; without a pause the message naming the rank was seen cut off (1 run in ~10 under load).
_FORWARD_SECONDS = 0.5


def _abort(comm, err):
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    sys.stdout.flush()
    sys.stderr.write(f"{tb}nativebp.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed with "
                     f"{type(err).__name__}: {err}; aborting all ranks\n")
    _abort_after_output(comm)


def _abort_after_output(comm):
    """MPI.Abort, once the launcher has had time to forward what this rank wrote."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(_FORWARD_SECONDS)
    comm.Abort(1)
    os._exit(1)  # MPICH's Abort may return before the launcher kills us: never unwind into user code


_HOOKED = []


def _install_excepthook(comm):
    """An uncaught exception on any rank aborts the job (as ``python -m mpi4py`` does)."""
    if _HOOKED:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.write(f"nativebp.distributed: rank {comm.Get_rank()} of {comm.Get_size()} stopped by an "
                         f"uncaught {kind.__name__}; aborting all ranks\n")
        _abort_after_output(comm)

    sys.excepthook = hook
    _HOOKED.append(hook)


def _guarded(method):
    """Runs a collective method; an error on this rank alone aborts every rank."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BaseException as e:
            if self.size > 1 and self.abort_on_error and not getattr(e, "all_ranks", False):
                _abort(self.comm, e)
            raise
    return run


def _batchnorms(layers):
    from .layers import BatchNorm1d, Residual
    for layer in layers:
        if isinstance(layer, BatchNorm1d):
            yield layer
        elif isinstance(layer, Residual):
            yield from _batchnorms(layer.layers)


def _allreduce_sum(comm, MPI, clock, timer):
    """The engine's collective for synced BatchNorm: an in-place sum of a float64 buffer over all
    ranks, its time added to clock[0] (watched by `timer` unless None). A closure over comm only
    (not the DataParallel), so the network holding it forms no reference cycle."""
    def allreduce(buf):
        t0 = time.perf_counter()
        if timer is None:
            comm.Allreduce(MPI.IN_PLACE, [buf, MPI.DOUBLE])
        else:
            timer.enter("a BatchNorm all-reduce")
            comm.Allreduce(MPI.IN_PLACE, [buf, MPI.DOUBLE])
            timer.leave()
        clock[0] += time.perf_counter() - t0
    return allreduce


class DataParallel:
    """Synchronous data-parallel training of ``net`` over ``comm`` (default MPI.COMM_WORLD).

    Construction broadcasts rank 0's parameters and BatchNorm state to every rank and reseeds each
    rank's Dropout generator from (``seed``, rank) (``seed`` defaults to rank 0's ``net.seed``).
    ``abort_on_error`` (default True): an error on one rank aborts all of them (see the module
    doc); it also installs a ``sys.excepthook`` doing so for uncaught exceptions.

    ``timeout`` (seconds, default None: wait as long as it takes): a rank that waits longer than
    this in one of the training's collectives (a step's all-reduces, BatchNorm's, evaluation, the
    per-epoch agreement) aborts the job with a message naming the ranks that did not arrive (stuck
    in a loop, deadlocked). A watchdog thread per rank checks 20 times a second; the collectives
    stay the blocking ones (cost: ``bench/SCALING.md``). A rank that dies is caught by the
    launcher without it.

    ``comm_seconds`` counts the time spent in this object's collectives during training steps;
    ``resyncs`` how often ``fit``'s per-epoch checksum found the replicas apart (expected: 0).
    """

    def __init__(self, net, comm=None, seed=None, abort_on_error=True, timeout=None):
        from .network import Sequential
        if not isinstance(net, Sequential):
            raise TypeError(f"net: expected a nativebp.Sequential, got {type(net).__name__}")
        if timeout is not None and not check_number("timeout", timeout) > 0:
            raise ValueError(f"timeout: expected a positive number of seconds or None, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        MPI = _mpi()
        self.MPI, self.net, self.abort_on_error = MPI, net, bool(abort_on_error)
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.comm_seconds, self.steps, self.resyncs = 0.0, 0, 0
        if self.size > 1 and self.abort_on_error:
            _install_excepthook(self.comm)
        self._setup(seed)

    @_guarded
    def _setup(self, seed):
        net = self.net
        shape = (net.dtype, [tuple(p) for p in net._engine.param_info()], [tuple(s) for s in net._engine.state_info()])
        if any(s != shape for s in self.comm.allgather(shape)):
            raise _everywhere(ValueError("net: the ranks built different networks (layers, sizes or dtype); every "
                                         "rank must construct the same architecture"))
        self._grad = net._engine.grad_array()
        self._mpi_type = self.MPI.FLOAT if net.dtype == "float32" else self.MPI.DOUBLE
        self._has_bn = any(True for _ in _batchnorms(net.layers))
        self._sync_bn = self._has_bn and self.size > 1  # BatchNorm over the global batch: engine collectives
        self._bn_clock = [0.0]
        self._timer = None
        if self.timeout is not None and self.size > 1:
            from ._collective_timeout import CollectiveTimeout
            self._timer = CollectiveTimeout(self.comm, self.MPI, self.timeout)
        self._allreduce = _allreduce_sum(self.comm, self.MPI, self._bn_clock, self._timer)
        self.seed = self.comm.bcast(net.seed if seed is None else check_int("seed", seed, 0), root=0)
        # (seed, rank) through SeedSequence, not seed + rank: rank 0 must not replay the init stream
        net._engine.reseed(int(np.random.SeedSequence([self.seed, self.rank]).generate_state(1, np.uint64)[0]))
        self.broadcast()

    def broadcast(self, optimizer=None):
        """Copies rank 0's parameters, BatchNorm state (and the optimizer's state) to every rank."""
        if self.size == 1:
            return
        for buf in (self.net._engine.param_array(), self.net._engine.state_array()):
            if buf.size:
                self.comm.Bcast([buf, self._mpi_type], root=0)
        if optimizer is not None:
            eng = optimizer._engine
            for name in eng.state_names():
                buf = eng.state_array(name)
                if buf.size:
                    self.comm.Bcast([buf, self._mpi_type], root=0)
            eng.steps = self.comm.bcast(list(eng.steps), root=0)

    # ------------------------------------------------------------------ one step
    @_guarded
    def train_step(self, X, y, loss="mse", optimizer=None, delta=1.0, l1=0.0, l2=0.0, clip_norm=None,
                   clip_value=None):
        """One synchronous step on this rank's shard (X, y) of the global batch; returns the global
        mean loss (plus penalty), the same on every rank. Shards may differ in size, and be empty."""
        net = self.net
        self._check_optimizer(optimizer)
        X, y, loss = self._shard(X, y, loss)
        total = np.array([float(len(X))])
        self._sum(total, self.MPI.DOUBLE, "the row-count all-reduce")
        if total[0] == 0:
            raise _everywhere(ValueError("X: every rank passed 0 rows; a step needs at least one row on some rank"))
        if self._has_bn and total[0] == 1:
            raise _everywhere(ValueError("X: the ranks passed 1 row in all, and BatchNorm needs at least 2 per step"))
        with self._synced_batchnorm():
            return self._step(X, y, loss, optimizer, check_number("delta", delta), check_number("l1", l1, 0),
                              check_number("l2", l2, 0), _clip("clip_norm", clip_norm), _clip("clip_value", clip_value),
                              int(total[0]))

    def _shard(self, X, y, loss):
        """``net._xy``, except that a shard may be empty: this rank has no rows in this step."""
        net = self.net
        if np.ndim(X) != 2 or np.shape(X)[0] != 0:
            return net._xy(X, y, loss)
        loss = check_loss(loss)
        if np.shape(X)[1] != net.in_features:
            raise ValueError(f"X: expected {net.in_features} columns, got shape {np.shape(X)}")
        if np.ndim(y) == 0 or np.shape(y)[0] != 0:
            raise ValueError(f"y: expected 0 rows, as X has, got shape {np.shape(y)}")
        labels = loss == "cross_entropy" and np.ndim(y) == 1
        y = np.zeros(0, np.int64) if labels else np.zeros((0, net.out_features), net.dtype)
        return np.zeros((0, net.in_features), net.dtype), y, loss

    def _check_optimizer(self, optimizer):
        from .optim import Optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a nativebp.optim optimizer for this network, got "
                            f"{type(optimizer).__name__}")
        optimizer._check_network(self.net)

    @contextlib.contextmanager
    def _synced_batchnorm(self):
        """While active, BatchNorm layers normalise with the global batch's statistics (the engine
        sums over the ranks); unset after, so the network alone never waits for other ranks."""
        if not self._sync_bn:
            yield
            return
        self.net._engine.set_allreduce(self._allreduce)
        try:
            yield
        finally:
            self.net._engine.set_allreduce(None)

    def _step(self, X, y, loss, optimizer, delta, l1, l2, clip_norm, clip_value, total):
        """This rank's shard (X, y), possibly empty, of a global batch of `total` rows. Its loss
        gradient is scaled by n/total, so the plain sum over the ranks is the global mean's."""
        eng, state = self.net._engine, self.net._engine.state_array()
        n = len(X)
        before = state.copy() if self._has_bn else None  # restored if the loss is not finite
        bn0 = self._bn_clock[0]
        eng.zero_grad()
        value = 0.0
        if n or self._sync_bn:  # an empty shard still joins synced BatchNorm's collectives
            value = eng.loss_and_grad(X, y, loss, delta, False, True, n / total)[0]
        t0 = time.perf_counter()
        sums = np.array([n, value * n], dtype=np.float64)
        self._sum(sums, self.MPI.DOUBLE, "the loss all-reduce")
        value = sums[1] / sums[0]
        if not np.isfinite(value):
            self.comm_seconds += time.perf_counter() - t0 + self._bn_clock[0] - bn0
            if before is not None:
                state[...] = before
            raise _everywhere(FloatingPointError(
                f"train_step: the loss is {value} (global mean over {int(sums[0])} rows); the step was skipped "
                f"on every rank and the weights are unchanged (lower the learning rate or clip gradients)"))
        self._sum(self._grad, self._mpi_type, "the gradient all-reduce")
        self.comm_seconds += time.perf_counter() - t0 + self._bn_clock[0] - bn0
        value += self._penalty(l1, l2)
        if clip_norm or clip_value:
            eng.clip_grad(clip_norm, clip_value)
        if not eng.grads_finite():  # the summed gradient is the same on every rank: all agree
            if before is not None:
                state[...] = before
            raise _everywhere(FloatingPointError(
                f"train_step: the summed gradient became NaN or infinite (loss {value}); the step was skipped on "
                f"every rank and the weights are unchanged (lower the learning rate or clip gradients)"))
        eng.step(optimizer._engine, optimizer._owned)
        self.steps += 1
        if self._timer is not None:
            self._timer.step = self.steps
        return value

    # ------------------------------------------------------------------ collectives (timed when asked)
    def _sum(self, buf, mpi_type, what):
        """In-place sum over the ranks."""
        if self._timer is not None:
            self._timer.enter(what)
        self.comm.Allreduce(self.MPI.IN_PLACE, [buf, mpi_type])
        if self._timer is not None:
            self._timer.leave()

    def _gather(self, mine, what):
        """Every rank's float64 vector `mine`, as rows of a (size, len) table."""
        table = np.empty((self.size, mine.size))
        if self._timer is not None:
            self._timer.enter(what)
        self.comm.Allgather([mine, self.MPI.DOUBLE], [table, self.MPI.DOUBLE])
        if self._timer is not None:
            self._timer.leave()
        return table

    def _barrier(self, what):
        if self._timer is not None:
            self._timer.enter(what)
        self.comm.Barrier()
        if self._timer is not None:
            self._timer.leave()

    def _penalty(self, l1, l2):
        """As the engine's train_step: grad += l1 sign(w) + l2 w on trainable weights (not biases)."""
        if not (l1 or l2):
            return 0.0
        value = 0.0
        for p in self.net.parameters():
            if p.is_weight and p.trainable:
                w = p.value
                p.grad += l1 * np.sign(w) + l2 * w
                value += l1 * float(np.abs(w).sum(dtype=np.float64)) + 0.5 * l2 * float(np.square(w, dtype=np.float64).sum())
        return value

    # ------------------------------------------------------------------ evaluation
    @_guarded
    def evaluate(self, X, y, loss="mse", metrics=None, delta=1.0):
        """Inference-mode mean loss and metrics ("accuracy", "mse", "mae") over the full (X, y),
        each rank scoring a contiguous share of the rows; the same dict on every rank."""
        X, y, loss = self.net._xy(X, y, loss)
        return self._evaluate(X, y, loss, _metrics(metrics), check_number("delta", delta))

    def _evaluate(self, X, y, loss, metrics, delta, prefix=""):
        from .training import _metric_flags
        acc, errors = _metric_flags(metrics, y, loss)  # mse/mae need (n, out) targets
        start, stop = shard_bounds(len(X), self.size, self.rank)
        keys = ["loss"] + metrics
        mine = np.zeros(1 + len(keys))
        if stop > start:
            t = self.net._engine.evaluate(X[start:stop], y[start:stop], loss, delta, min(stop - start, 1024),
                                          acc, errors)
            mine[0] = t["samples"]
            mine[1:] = [t[k] * t["samples"] for k in keys]
        sums = self._gather(mine, "the evaluation's all-gather").sum(axis=0)
        return {prefix + k: float(v / sums[0]) for k, v in zip(keys, sums[1:])}

    # ------------------------------------------------------------------ the epoch loop
    @_guarded
    def fit(self, X, y, loss="mse", optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
            validation_data=None, validation_split=0.0, metrics=None, callbacks=None, verbose=1, initial_epoch=0,
            drop_last=False, delta=1.0, l1=0.0, l2=0.0, clip_norm=None, clip_value=None):
        """Train on the full (X, y), passed identically on every rank, for ``epochs`` epochs; the
        arguments mean what they mean in ``Sequential.fit``, except:

        - ``batch_size`` is per rank: a step trains on ``size * batch_size`` rows. Epoch e's order
          is ``epoch_order(len(X), seed, e, shuffle)`` (``seed`` defaults to the constructor's).
        - ``metrics`` ("accuracy", "mse", "mae") are computed on the validation data only
          (``validation_data``, or ``validation_split``: the last rows, before sharding).
        - ``callbacks`` run on every rank with the same logs, so EarlyStopping, schedules and
          ReduceLROnPlateau decide alike (the stop flag and the learning rate are also agreed on
          through MPI); a ``ModelCheckpoint`` writes on rank 0 only, while the others wait, so
          its file is complete when any rank goes on (and may ``nb.load`` it).
        - ``drop_last`` skips a short last batch.

        Returns a ``History`` (the same on every rank). A non-finite loss raises
        ``FloatingPointError`` on every rank (``err.history``: the epochs done)."""
        from .callbacks import ModelCheckpoint, as_callbacks
        from .training import History, _optimizer, _split
        net = self.net
        optimizer = _optimizer(net, optimizer)  # as fit: default Adam(lr=1e-3), initial_lr for schedules
        X, y, loss = net._xy(X, y, loss)
        epochs, initial_epoch = check_int("epochs", epochs, 0), check_int("initial_epoch", initial_epoch, 0)
        batch_size = check_int("batch_size", batch_size)
        seed = self.seed if seed is None else check_int("seed", seed, 0)
        metrics, delta = _metrics(metrics), check_number("delta", delta)
        l1, l2 = check_number("l1", l1, 0), check_number("l2", l2, 0)
        clip_norm, clip_value = _clip("clip_norm", clip_norm), _clip("clip_value", clip_value)
        X, y, val = _split(net, X, y, loss, validation_data, validation_split)
        cbs = as_callbacks(callbacks)
        writes = any(isinstance(cb, ModelCheckpoint) for cb in cbs)
        if self.rank != 0:
            cbs = [cb for cb in cbs if not isinstance(cb, ModelCheckpoint)]
        self._agree(X, y, val, epochs, batch_size, seed, bool(shuffle), loss, initial_epoch, bool(drop_last))
        steps = self._plan(len(X), batch_size, bool(drop_last))
        self.broadcast(optimizer)
        G = batch_size * self.size
        history = History({"epochs": epochs, "initial_epoch": initial_epoch, "batch_size": batch_size,
                           "global_batch_size": G, "ranks": self.size, "samples": len(X), "steps": steps})
        net.history, net.stop_training = history, False
        net._fit_info = {"loss": loss, "delta": delta, "metrics": metrics, "optimizer": optimizer}  # as fit
        for cb in cbs:
            cb.set_context(net, optimizer, history.params)
            cb.on_train_begin({})
        try:
            for epoch in range(initial_epoch, initial_epoch + epochs):
                for cb in cbs:
                    cb.on_epoch_begin(epoch, {})
                optimizer.lr = lr = self.comm.bcast(optimizer.lr, root=0)
                start, total = time.perf_counter(), 0.0
                order = epoch_order(len(X), seed, epoch, shuffle)
                with self._synced_batchnorm():
                    for s in range(steps):
                        rows = order[s * G:(s + 1) * G]
                        a, b = shard_bounds(len(rows), self.size, self.rank)
                        if shuffle:
                            Xb, yb = X[rows[a:b]], y[rows[a:b]]
                        else:  # contiguous rows: views, no copy
                            Xb, yb = X[rows[0] + a:rows[0] + b], y[rows[0] + a:rows[0] + b]
                        total += len(rows) * self._step(Xb, yb, loss, optimizer, delta, l1, l2, clip_norm, clip_value,
                                                        len(rows))
                seen = min(steps * G, len(X))
                logs = {"loss": total / seen}
                if val is not None:
                    logs.update(self._evaluate(*val, loss, metrics, delta, prefix="val_"))
                logs["lr"] = lr
                history._append(epoch, logs)
                self._check_replicas(optimizer)
                if verbose and self.rank == 0:
                    elapsed = time.perf_counter() - start
                    text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
                    print(f"Epoch {epoch + 1}/{initial_epoch + epochs} - {elapsed:.2f}s - {text} - "
                          f"{seen / max(elapsed, 1e-9):,.0f} samples/s on {self.size} ranks", flush=True)
                for cb in cbs:
                    cb.on_epoch_end(epoch, logs)
                if writes:
                    self._barrier("the barrier after rank 0's checkpoint")
                stop = np.array([float(bool(net.stop_training))])
                self._sum(stop, self.MPI.DOUBLE, "the end-of-epoch agreement on stopping")
                if stop[0]:
                    break
        except FloatingPointError as e:
            e.history = history
            for cb in cbs:
                cb.on_train_end({"interrupted": False, "diverged": True})
            raise
        for cb in cbs:
            cb.on_train_end({"interrupted": False, "diverged": False})
        return history

    def _check_replicas(self, optimizer):
        """The ranks apply the same step to the same numbers, so their weights agree bit for bit;
        a checksum per epoch catches any drift (counted in ``resyncs``) and re-syncs from rank 0."""
        if self.size == 1:
            return
        eng = self.net._engine
        mine = np.array([zlib.crc32(eng.param_array().data, zlib.crc32(eng.state_array().data))], dtype=np.float64)
        if len(set(self._gather(mine, "the end-of-epoch weight checksum").ravel())) > 1:
            self.resyncs += 1
            self.broadcast(optimizer)

    def _agree(self, X, y, val, *settings):
        """Every rank must pass the same data and settings, or the ranks would run different numbers
        of collectives and hang: compare a fingerprint of each (one small allgather)."""
        def digest(a):
            step = max(1, len(a) // 256)  # a sample of rows keeps this cheap on big data
            return (a.shape, str(a.dtype), zlib.crc32(np.ascontiguousarray(a[::step]).tobytes()))
        mine = (digest(X), digest(y), None if val is None else (digest(val[0]), digest(val[1])), settings)
        everyone = self.comm.allgather(mine)
        if any(o != mine for o in everyone):
            names = ["X", "y", "validation_data", "the fit settings"]
            which = [nm for i, nm in enumerate(names) if any(o[i] != everyone[0][i] for o in everyone)]
            raise _everywhere(ValueError(
                f"fit: the ranks passed different {', '.join(which)}; every rank must pass the same full data "
                f"and settings (DataParallel shards it by rank)"))

    def _plan(self, n, batch_size, drop_last):
        """Steps per epoch; refuses a 1-row last batch with BatchNorm (as one process would)."""
        G = batch_size * self.size
        full, rest = divmod(n, G)
        if drop_last or rest == 0:
            if full == 0:
                raise _everywhere(ValueError(f"batch_size: {n} rows are fewer than one global batch of {G} "
                                             f"({self.size} ranks x {batch_size}); lower batch_size or drop_last=False"))
            return full
        if self._has_bn and rest == 1:
            raise _everywhere(ValueError(
                f"batch_size: the last batch would have 1 row ({n} rows, global batch {G}) and BatchNorm needs "
                f"at least 2; pass drop_last=True or another batch_size"))
        return full + 1


def data_parallel(net, comm=None):
    """The DataParallel of ``net`` (made on first use and kept on the network), so successive
    ``fit`` calls continue one run: what ``net.fit(..., distributed=True)`` calls."""
    dp = getattr(net, "_data_parallel", None)
    if dp is None or (comm is not None and dp.comm is not comm):
        dp = net._data_parallel = DataParallel(net, comm)
    return dp
