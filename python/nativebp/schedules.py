"""Learning-rate schedules as ``fit`` callbacks, per epoch, with torch.optim.lr_scheduler's names,
arguments and closed-form formulas.

At the start of epoch ``e`` (0-based, continuing across ``initial_epoch``) each sets
``optimizer.lr = lr_at(e)``, a function of ``e`` and ``base_lr`` only, so a resumed run gets the
same rates as an uninterrupted one. ``base_lr`` defaults to the optimizer's ``initial_lr``: its
``lr`` when ``fit`` first used it (saved with it by ``net.save(path, optimizer=opt)``), as torch
keeps ``initial_lr`` in the param group.

>>> import nativebp as nb
>>> [round(nb.schedules.StepLR(step_size=2, gamma=0.5, base_lr=1.0).lr_at(e), 3) for e in range(5)]
[1.0, 1.0, 0.5, 0.5, 0.25]
"""
from __future__ import annotations

import bisect
import math

from ._checks import check_int, check_number
from .callbacks import Callback

__all__ = ["LRSchedule", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"]


class LRSchedule(Callback):
    """Base: ``lr_at(epoch) = base_lr * factor(epoch)``; subclasses define ``factor``."""

    def __init__(self, base_lr=None):
        self.base_lr = None if base_lr is None else check_number("base_lr", base_lr, 0)

    def factor(self, epoch):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def lr_at(self, epoch, base_lr=None):
        """The rate for ``epoch``; ``base_lr`` overrides the schedule's own."""
        return self._base_lr(base_lr) * self.factor(epoch)

    def _base_lr(self, base_lr):
        for b in (base_lr, self.base_lr, getattr(self, "_base", None)):
            if b is not None:
                return b
        raise ValueError("base_lr: unknown before fit starts; pass base_lr= to the schedule or to lr_at")

    def on_train_begin(self, logs=None):
        self._base = self.base_lr if self.base_lr is not None else self.optimizer.initial_lr

    def on_epoch_begin(self, epoch, logs=None):
        self.optimizer.lr = self.lr_at(epoch)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k not in
                         ("model", "optimizer", "params"))
        return f"{type(self).__name__}({args})"


class StepLR(LRSchedule):
    """``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, step_size, gamma=0.1, base_lr=None):
        super().__init__(base_lr)
        self.step_size, self.gamma = check_int("step_size", step_size), check_number("gamma", gamma, 0)

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRSchedule):
    """``base_lr * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, milestones, gamma=0.1, base_lr=None):
        super().__init__(base_lr)
        try:
            self.milestones = sorted(check_int("milestones", m, 0) for m in milestones)
        except TypeError:
            raise TypeError(f"milestones: expected a list of epoch numbers, got {milestones!r}") from None
        self.gamma = check_number("gamma", gamma, 0)

    def factor(self, epoch):
        return self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRSchedule):
    """``base_lr * gamma ** epoch``."""

    def __init__(self, gamma, base_lr=None):
        super().__init__(base_lr)
        self.gamma = check_number("gamma", gamma, 0)

    def factor(self, epoch):
        return self.gamma ** epoch


class CosineAnnealingLR(LRSchedule):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` (SGDR without
    restarts; past ``T_max`` it rises again, as torch's closed form does)."""

    def __init__(self, T_max, eta_min=0.0, base_lr=None):
        super().__init__(base_lr)
        self.T_max, self.eta_min = check_int("T_max", T_max), check_number("eta_min", eta_min, 0)

    def lr_at(self, epoch, base_lr=None):  # not a multiple of base_lr when eta_min > 0
        base = self._base_lr(base_lr)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRSchedule):
    """Linear warm-up (or decay) of the factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs, then constant: ``base_lr * (start + (end - start) * min(epoch,
    total_iters) / total_iters)``."""

    def __init__(self, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, base_lr=None):
        super().__init__(base_lr)
        self.start_factor, self.end_factor = check_number("start_factor", start_factor, 0), \
            check_number("end_factor", end_factor, 0)
        if not (0 < self.start_factor <= 1 and self.end_factor <= 1):
            raise ValueError(f"start_factor, end_factor: expected 0 < start_factor <= 1 and 0 <= end_factor <= 1, "
                             f"got {start_factor!r}, {end_factor!r}")
        self.total_iters = check_int("total_iters", total_iters)

    def factor(self, epoch):
        t = min(epoch, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * t
