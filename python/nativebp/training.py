"""``fit``, ``evaluate`` and ``predict_proba``: the Keras-like loop around the engine's epoch runner.

Whole epochs run in C++ (``_core.Trainer``: shuffle, gather, fused train step, metrics) in chunks
of batches with the GIL released. Between chunks (about every 0.1 s) Python redraws the progress
line and notices Ctrl-C: a ``KeyboardInterrupt`` stops training after the current chunk, keeps the
weights as they are and returns the ``History`` of the completed epochs (``interrupted=True``).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import _core
from ._checks import check_int, check_loss, check_number

__all__ = ["fit", "evaluate", "predict_proba", "History", "METRICS"]

_TRAINERS = {"float32": _core.Trainer32, "float64": _core.Trainer64}
METRICS = ("accuracy", "mse", "mae")
_ALIASES = {"acc": "accuracy", "mean_squared_error": "mse", "mean_absolute_error": "mae"}
_CHUNK_SECONDS = 0.1  # how often control comes back to Python during an epoch
_MASK64 = (1 << 64) - 1


class History:
    """What ``fit`` returns. ``history``: key -> list with one value per epoch run (``loss``, the
    metrics, ``val_`` versions, ``lr``); ``epoch``: the epoch numbers (0-based, continuing from
    ``initial_epoch``); ``interrupted``: Ctrl-C stopped training; ``params``: the run's settings."""

    def __init__(self, params=None):
        self.history, self.epoch, self.params, self.interrupted = {}, [], dict(params or {}), False

    def _append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items())
        return f"History(epochs={self.epoch[:1] + self.epoch[-1:] if self.epoch else []}, last: {last})"


def _epoch_seed(seed, epoch):
    """splitmix64 of (seed, epoch): each epoch's shuffle depends on nothing else, so a resumed run
    (``initial_epoch=k``) draws the same batches as an uninterrupted one."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _check_metrics(metrics):
    if metrics is None:
        return []
    if isinstance(metrics, str):
        metrics = [metrics]
    out = []
    for m in metrics:
        name = _ALIASES.get(m, m) if isinstance(m, str) else m
        if name not in METRICS:
            raise ValueError(f"metrics: expected names from {', '.join(METRICS)}, got {m!r}")
        if name not in out:
            out.append(name)
    return out


def _metric_flags(metrics, y, loss):
    errors = "mse" in metrics or "mae" in metrics
    if errors and y.ndim == 1:
        raise ValueError(f"metrics: 'mse'/'mae' compare outputs with (n, out) targets; loss={loss!r} with class "
                         f"labels has none (use metrics=['accuracy'])")
    return "accuracy" in metrics, errors


def _clip(name, value):
    if value is None:
        return 0.0
    if check_number(name, value) <= 0:
        raise ValueError(f"{name}: expected a positive number or None, got {value!r}")
    return float(value)


def _split(net, X, y, loss, validation_data, validation_split):
    """Training arrays and the validation pair (or None). ``validation_split`` takes the *last*
    fraction of the rows, before any shuffling (as Keras does)."""
    split = check_number("validation_split", validation_split, 0)
    if validation_data is not None:
        if split:
            raise ValueError("validation_split: give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data: expected a pair (X_val, y_val)")
        Xv, yv, _ = net._xy(validation_data[0], validation_data[1], loss)
        return X, y, (Xv, yv)
    if not split:
        return X, y, None
    if split >= 1:
        raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
    at = int(len(X) * (1.0 - split))
    if at < 1 or at >= len(X):
        raise ValueError(f"validation_split: {validation_split!r} of {len(X)} samples leaves an empty training "
                         f"or validation set")
    return X[:at], y[:at], (X[at:], y[at:])


def _optimizer(net, optimizer):
    if optimizer is None:  # reuse the previous fit's, so fit(); fit() continues one run
        optimizer = getattr(net, "_fit_info", {}).get("optimizer")
        if optimizer is None:
            from .optim import Adam
            optimizer = Adam(net, lr=1e-3)
    from .optim import Optimizer
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected a nativebp.optim optimizer, got {type(optimizer).__name__}")
    optimizer._check_network(net)
    if not hasattr(optimizer, "initial_lr"):  # the base of LR schedules, kept across resumes (as torch)
        optimizer.initial_lr = optimizer.lr
    return optimizer


def _engine_metrics(engine, X, y, loss, delta, metrics, batch_size=1024, prefix=""):
    acc, errors = _metric_flags(metrics, y, loss)
    t = engine.evaluate(X, y, loss, delta, min(len(X), batch_size), acc, errors)
    return {prefix + k: float(t[k]) for k in ["loss"] + metrics}


def fit(net, X, y, loss="mse", optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
        validation_data=None, validation_split=0.0, metrics=None, callbacks=None, verbose=1, l1=0.0, l2=0.0,
        clip_norm=None, clip_value=None, initial_epoch=0, delta=1.0, distributed=False):
    """Train ``net`` on (X, y) for ``epochs`` epochs; returns a ``History``.

    - ``epochs`` is how many epochs *this call* runs, numbered ``initial_epoch ..
      initial_epoch + epochs - 1`` (unlike Keras, where ``epochs`` is the last number): so
      ``fit(epochs=2)`` then ``fit(epochs=2, initial_epoch=2)`` equals ``fit(epochs=4)`` bit for bit.
    - ``optimizer``: default the previous fit's optimizer on this network, else ``Adam(lr=1e-3)``.
    - ``seed`` (default ``net.seed``) and the epoch number seed each epoch's shuffle; the same
      seed, data and thread count give bit-identical weights.
    - ``validation_data=(Xv, yv)`` or ``validation_split`` (the last fraction of the rows, taken
      before shuffling) add ``val_loss`` and ``val_<metric>`` to the logs, in inference mode.
    - ``metrics``: any of ``"accuracy"``, ``"mse"``, ``"mae"``; training values are averaged over
      the epoch's batches as they were seen (before each step), as Keras reports them.
    - ``callbacks``: ``nb.callbacks.Callback`` objects or plain functions ``f(epoch, logs)`` called
      after each epoch (returning ``True`` stops training).
    - ``verbose``: 0 silent, 1 a progress bar per epoch (tqdm when installed), 2 one line per epoch.
    - ``l1``, ``l2`` penalties on the weights (the reported loss includes them), ``clip_norm`` /
      ``clip_value`` gradient clipping, ``delta`` for the huber loss.

    Ctrl-C stops after the current chunk of batches (< 0.1 s), keeps the weights and returns the
    History so far with ``interrupted=True``. A non-finite loss stops training and raises
    ``FloatingPointError`` (with the History as ``err.history``); the weights are those of the last
    finite step (the step that produced NaN/inf is skipped), or the best epoch's when an
    ``EarlyStopping(restore_best_weights=True)`` callback has one.

    ``distributed=True``: data-parallel training over MPI, for a script run unchanged under
    ``mpiexec -n N python train.py`` (``pip install "nativebp[mpi]"``): the same call on
    ``nativebp.distributed.data_parallel(net)``, whose ``fit`` documents the differences:
    ``batch_size`` is per rank, the batch order is ``nativebp.distributed.epoch_order``, only
    rank 0 prints (one line per epoch) and writes checkpoints, and ``metrics`` are computed on the
    validation data only (so they need ``validation_data`` or ``validation_split``).
    """
    if distributed is not False:
        if distributed is not True:
            raise TypeError(f"distributed: expected True or False, got {distributed!r}")
        return _fit_distributed(net, X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                                shuffle=shuffle, seed=seed, validation_data=validation_data,
                                validation_split=validation_split, metrics=metrics, callbacks=callbacks,
                                verbose=verbose, l1=l1, l2=l2, clip_norm=clip_norm, clip_value=clip_value,
                                initial_epoch=initial_epoch, delta=delta)
    from .callbacks import as_callbacks
    loss = check_loss(loss)
    delta = check_number("delta", delta)
    epochs, initial_epoch = check_int("epochs", epochs, 0), check_int("initial_epoch", initial_epoch, 0)
    batch_size = check_int("batch_size", batch_size)
    seed = net.seed if seed is None else check_int("seed", seed, 0)
    if verbose not in (0, 1, 2, False, True):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    metrics = _check_metrics(metrics)
    X, y, loss = net._xy(X, y, loss)
    X, y, val = _split(net, X, y, loss, validation_data, validation_split)
    acc, errors = _metric_flags(metrics, y, loss)
    optimizer = _optimizer(net, optimizer)
    cbs = as_callbacks(callbacks)
    trainer = _TRAINERS[net.dtype](
        net._engine, optimizer._engine, X, y, loss, delta, batch_size, bool(shuffle), seed & _MASK64,
        optimizer._owned, check_number("l1", l1, 0), check_number("l2", l2, 0), _clip("clip_norm", clip_norm),
        _clip("clip_value", clip_value), acc, errors)
    net._fit_info = {"loss": loss, "delta": delta, "metrics": metrics, "optimizer": optimizer}
    keys = ["loss"] + metrics + (["val_loss"] + [f"val_{m}" for m in metrics] if val else [])
    history = History({"epochs": epochs, "initial_epoch": initial_epoch, "batch_size": batch_size,
                       "samples": len(X), "steps": trainer.batches_per_epoch, "metrics": keys + ["lr"]})
    net.history, net.stop_training = history, False
    for cb in cbs:
        cb.set_context(net, optimizer, history.params)
    progress = _Progress(int(verbose), initial_epoch + epochs, trainer.batches_per_epoch)
    diverged = None
    try:
        for cb in cbs:
            cb.on_train_begin({})
        chunk = 1
        for epoch in range(initial_epoch, initial_epoch + epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch, {})
            lr = optimizer.lr
            # begin_epoch(seed) shuffles 0..n-1 afresh: the order is a function of (seed, epoch) alone
            trainer.begin_epoch(seed=_epoch_seed(seed, epoch))
            progress.begin(epoch)
            start = time.perf_counter()
            totals, chunk = _run_epoch(trainer, chunk, progress, start)
            if totals["diverged"]:
                diverged = (epoch, totals["batches"])
                break
            logs = {k: float(totals[k]) for k in ["loss"] + metrics}
            if val:
                logs.update(_engine_metrics(net._engine, *val, loss, delta, metrics, prefix="val_"))
            logs["lr"] = lr
            history._append(epoch, logs)
            progress.end(logs, totals["samples"], time.perf_counter() - start)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if net.stop_training:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        progress.close()
        if verbose:
            print(f"\nfit: interrupted (Ctrl-C); kept the weights, {len(history)} complete epoch(s) in the History",
                  file=sys.stdout, flush=True)
    progress.close()
    for cb in cbs:
        cb.on_train_end({"interrupted": history.interrupted, "diverged": diverged is not None})
    if diverged:
        err = FloatingPointError(
            f"fit: the loss or its gradient became NaN or infinite in epoch {diverged[0]} after {diverged[1]} finite batches; "
            f"training stopped, that step was skipped and the weights are the last finite ones (lower the "
            f"learning rate, pass clip_norm=, or check X and y for extreme values)")
        err.history = history
        raise err
    return history


def _fit_distributed(net, X, y, **kwargs):
    """fit(distributed=True): refuses what DataParallel.fit would silently do otherwise, then runs it."""
    if kwargs["verbose"] not in (0, 1, 2, False, True):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {kwargs['verbose']!r}")
    metrics = _check_metrics(kwargs["metrics"])
    if metrics and kwargs["validation_data"] is None and not kwargs["validation_split"]:
        raise ValueError(f"metrics: with distributed=True, metrics ({', '.join(metrics)}) are computed on the "
                         f"validation data only; pass validation_data= or validation_split=, or leave metrics out")
    from . import distributed  # mpi4py is imported by DataParallel: a clear ImportError if it is missing
    return distributed.data_parallel(net).fit(X, y, **dict(kwargs, metrics=metrics))


def _run_epoch(trainer, chunk, progress, start):
    """Runs the epoch in chunks sized to take about _CHUNK_SECONDS each (Python, and Ctrl-C, get
    control between them); returns the epoch's totals and the chunk size for the next epoch."""
    while True:
        t0 = time.perf_counter()
        done = trainer.run(chunk)
        chunk = max(1, min(trainer.batches_per_epoch,
                           int(chunk * _CHUNK_SECONDS / max(time.perf_counter() - t0, 1e-6))))
        totals = trainer.totals()
        progress.update(totals, time.perf_counter() - start)
        if done:
            return totals, chunk


def _fit_setting(net, key, value, what):
    if value is not None:
        return value
    info = getattr(net, "_fit_info", None)
    if not info or info.get(key) is None:
        raise ValueError(f"{key}: this network has not been fit, pass {key}= ({what})")
    return info[key]


def evaluate(net, X, y, loss=None, metrics=None, batch_size=1024, delta=None):
    """Inference-mode mean loss and metrics over (X, y) as a dict (``loss``, ``accuracy``, ...).
    ``loss``, ``metrics`` and ``delta`` default to those of the network's last ``fit``."""
    loss = _fit_setting(net, "loss", loss, "e.g. 'cross_entropy'")
    info = getattr(net, "_fit_info", None) or {}
    metrics = _check_metrics(info.get("metrics") if metrics is None else metrics)
    delta = check_number("delta", info.get("delta", 1.0) if delta is None else delta)
    X, y, loss = net._xy(X, y, loss)
    return _engine_metrics(net._engine, X, y, loss, delta, metrics, check_int("batch_size", batch_size))


def predict_proba(net, X, loss=None, batch_size=None):
    """Class probabilities. The network's outputs are taken as logits of ``loss`` (default: the
    loss of its last ``fit``, also saved in its file): ``"cross_entropy"`` -> softmax over the
    outputs; ``"binary_cross_entropy"`` -> sigmoid of each output (shape (n, out): one probability
    per output, i.e. of class 1 for a 1-output binary net). A network ending in ``Softmax`` or
    ``Sigmoid`` already outputs probabilities and they are returned as they are."""
    from .layers import Sigmoid, Softmax
    Z = net.predict(X, batch_size=batch_size)
    if net.layers and isinstance(net.layers[-1], (Softmax, Sigmoid)):
        return Z
    loss = check_loss(_fit_setting(net, "loss", loss, "'cross_entropy' or 'binary_cross_entropy'"))
    if loss == "cross_entropy":
        if Z.shape[1] < 2:
            raise ValueError("predict_proba: softmax over 1 output is always 1; a binary classifier with one "
                             "output should use loss='binary_cross_entropy'")
        e = np.exp(Z - Z.max(axis=1, keepdims=True))  # shifted: exp never overflows
        return e / e.sum(axis=1, keepdims=True)
    if loss == "binary_cross_entropy":
        e = np.exp(-np.abs(Z))  # sigmoid from exp(-|z|): no overflow for either sign
        return np.where(Z >= 0, 1 / (1 + e), e / (1 + e)).astype(Z.dtype)
    raise ValueError(f"predict_proba: outputs of a network trained with loss={loss!r} are not class scores; pass "
                     f"loss='cross_entropy' or 'binary_cross_entropy'")


class _Progress:
    """Per-epoch progress: tqdm when installed (verbose=1), else a '\\r' line on a terminal; an
    end-of-epoch summary line for verbose 1 and 2."""

    def __init__(self, verbose, total_epochs, steps):
        self.verbose, self.total, self.steps, self.bar, self.width = verbose, total_epochs, steps, None, 0
        self.out = sys.stdout
        self.tty = verbose == 1 and hasattr(self.out, "isatty") and self.out.isatty()
        self.tqdm = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
                self.tqdm = tqdm
            except ImportError:
                pass

    def begin(self, epoch):
        self.epoch = epoch
        if self.tqdm is not None:
            self.bar = self.tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.total}", unit="batch",
                                 leave=True, file=self.out)

    def update(self, totals, elapsed):
        if self.bar is not None:
            self.bar.update(int(totals["batches"]) - self.bar.n)
            self.bar.set_postfix(loss=f"{totals['loss']:.4f}", refresh=False)
        elif self.tty:
            done = int(totals["batches"])
            fill = int(20 * done / max(self.steps, 1))
            rate = totals["samples"] / max(elapsed, 1e-9)
            line = (f"Epoch {self.epoch + 1}/{self.total} [{'=' * fill}{' ' * (20 - fill)}] {done}/{self.steps}"
                    f" - loss: {totals['loss']:.4f} - {rate:,.0f} samples/s")
            self.out.write("\r" + line.ljust(self.width))
            self.width = len(line)
            self.out.flush()

    def end(self, logs, samples, elapsed):
        if not self.verbose:
            return
        text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)
            self.bar.close()
            self.bar = None
            return
        line = (f"Epoch {self.epoch + 1}/{self.total} - {elapsed:.2f}s - {text} - "
                f"{samples / max(elapsed, 1e-9):,.0f} samples/s")
        self.out.write(("\r" + line.ljust(self.width) if self.tty else line) + "\n")
        self.width = 0
        self.out.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
