"""Callbacks for ``fit``: hooks called around training and each epoch.

A callback sees ``self.model`` (the network), ``self.optimizer`` and ``self.params`` (the run's
settings); setting ``self.model.stop_training = True`` ends training after the current epoch.
A plain function ``f(epoch, logs)`` is accepted too: it runs after each epoch, and returning
``True`` stops training. ``logs`` holds ``loss``, the metrics, their ``val_`` versions and ``lr``.

>>> import nativebp as nb
>>> cbs = [nb.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
...        nb.callbacks.StepLR(step_size=10, gamma=0.5),
...        lambda epoch, logs: logs["loss"] < 1e-3]
"""
from __future__ import annotations

import math
import os

from ._checks import check_int, check_number

__all__ = ["Callback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "LRSchedule", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "as_callbacks"]

_SCHEDULES = ("LRSchedule", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR")


def __getattr__(name):  # the schedules live in nativebp.schedules (they subclass Callback)
    if name in _SCHEDULES:
        from . import schedules
        return getattr(schedules, name)
    raise AttributeError(f"module 'nativebp.callbacks' has no attribute {name!r}")


class Callback:
    """Base class: override any of the hooks; ``logs`` is a dict of this epoch's numbers."""

    model = optimizer = None
    params: dict = {}

    def set_context(self, model, optimizer, params):
        self.model, self.optimizer, self.params = model, optimizer, params

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class LambdaCallback(Callback):
    """Wraps ``fn(epoch, logs)``, called after each epoch; a ``True`` result stops training."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"fn: expected a callable f(epoch, logs), got {type(fn).__name__}")
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        if self.fn(epoch, logs) is True:
            self.model.stop_training = True


def as_callbacks(callbacks):
    """A list of Callback objects from None, one callback, or a list of callbacks and functions."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(LambdaCallback(cb))
        else:
            raise TypeError(f"callbacks: expected Callback objects or functions f(epoch, logs), got "
                            f"{type(cb).__name__}")
    return out


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged value for improvement."""

    def __init__(self, monitor, mode, min_delta):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.min_delta = monitor, abs(check_number("min_delta", min_delta))
        # accuracy-like values improve upwards, losses and errors downwards
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")

    def _check_monitor(self):
        keys = self.params.get("metrics")
        if keys is not None and self.monitor not in keys:
            hint = " (pass validation_data= or validation_split=)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"monitor: {self.monitor!r} is not logged by this fit{hint}; logged: {', '.join(keys)}")

    def _improved(self, current, best):
        if best is None:
            return math.isfinite(current)
        return current < best - self.min_delta if self.mode == "min" else current > best + self.min_delta


def _weights(net):
    return net._engine.param_array().copy(), net._engine.state_array().copy()


def _set_weights(net, weights):
    net._engine.param_array()[...] = weights[0]
    net._engine.state_array()[...] = weights[1]


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode="auto"`` maximises names containing "acc" and minimises the rest. With
    ``restore_best_weights=True`` the parameters and running statistics of the best epoch are put
    back when training ends (however it ends). ``best``, ``best_epoch`` and ``stopped_epoch``
    (``None`` if it never stopped training) record what happened.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", restore_best_weights=False,
                 verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = check_int("patience", patience, 0)
        self.restore_best_weights, self.verbose = bool(restore_best_weights), verbose

    def on_train_begin(self, logs=None):
        self._check_monitor()
        self.wait, self.best, self.best_epoch, self.stopped_epoch, self._best_weights = 0, None, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        current = logs[self.monitor]
        if self._improved(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self._best_weights = _weights(self.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.verbose and self.stopped_epoch is not None:
            print(f"EarlyStopping: stopped after epoch {self.stopped_epoch}; best {self.monitor} "
                  f"{self.best:.4g} at epoch {self.best_epoch}")
        if self._best_weights is not None:
            _set_weights(self.model, self._best_weights)


class ModelCheckpoint(_Monitor):
    """Save the network (and its optimizer, for exact resumption) after each epoch.

    ``path`` may contain ``{epoch}`` (the number of epochs done, i.e. the ``initial_epoch`` to
    resume with) and any logged key, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.nbp"``. With
    ``save_best_only`` it writes only when ``monitor`` improves. Each file's header records
    ``meta = {"epoch": epochs done, monitor: value}`` (``nb.io.read_header(path)["meta"]``).
    Writes are atomic: a crash mid-save leaves the previous file intact.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto", save_optimizer=True, verbose=0):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
        super().__init__(monitor, mode, 0.0)
        self.path, self.save_best_only = os.fspath(path), bool(save_best_only)
        self.save_optimizer, self.verbose = bool(save_optimizer), verbose
        self.best = None

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            self._check_monitor()

    def on_epoch_end(self, epoch, logs=None):
        meta = {"epoch": epoch + 1}
        if self.save_best_only:
            current = logs[self.monitor]
            if not self._improved(current, self.best):
                return
            self.best = meta[self.monitor] = current
        path = self.path.format(epoch=epoch + 1, **logs)
        self.model.save(path, optimizer=self.optimizer if self.save_optimizer else None, meta=meta)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")


class LearningRateScheduler(Callback):
    """Sets ``optimizer.lr = schedule(epoch, lr)`` at the start of each epoch (Keras' signature;
    ``epoch`` counts from 0). For the classic schedules see ``StepLR`` ... ``LinearLR``."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"schedule: expected a callable schedule(epoch, lr), got {type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.schedule(epoch, self.optimizer.lr)
        self.optimizer.lr = check_number("schedule(epoch, lr)", lr, 0)
        if self.verbose:
            print(f"LearningRateScheduler: epoch {epoch} lr {self.optimizer.lr:.6g}")


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs; then wait ``cooldown`` epochs; never below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4, cooldown=0,
                 min_lr=0.0, verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.factor = check_number("factor", factor, 0)
        if not self.factor < 1:
            raise ValueError(f"factor: expected a number in [0, 1), got {factor!r}")
        self.patience, self.cooldown = check_int("patience", patience, 0), check_int("cooldown", cooldown, 0)
        self.min_lr, self.verbose = check_number("min_lr", min_lr, 0), verbose

    def on_train_begin(self, logs=None):
        self._check_monitor()
        self.best, self.wait, self.cooldown_left = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        current = logs[self.monitor]
        improved = self._improved(current, self.best)
        if improved:
            self.best, self.wait = current, 0
        if self.cooldown_left > 0:  # epochs right after a reduction do not count
            self.cooldown_left -= 1
            return
        if improved:
            return
        self.wait += 1
        if self.wait >= self.patience and self.optimizer.lr > self.min_lr:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.cooldown_left, self.wait = self.cooldown, 0
            if self.verbose:
                print(f"ReduceLROnPlateau: epoch {epoch} lr -> {self.optimizer.lr:.6g}")
