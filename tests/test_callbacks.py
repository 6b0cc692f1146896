"""Callbacks and learning-rate schedules: EarlyStopping, ModelCheckpoint, LearningRateScheduler,
ReduceLROnPlateau, plain functions, and the schedules' closed-form formulas (torch's)."""
import math

import numpy as np
import pytest

import nativebp as nb
from nativebp.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau
from nativebp.schedules import CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, StepLR
from test_fit import blobs, small_net, weights


class _Model:
    stop_training = False


def drive(cb, values, monitor="val_loss", lr=1.0):
    """Feeds a callback the logged values epoch by epoch, as fit would; returns the epochs run
    and the learning rates seen at the end of each."""
    opt = type("Opt", (), {"lr": lr, "initial_lr": lr})()
    model = _Model()
    cb.set_context(model, opt, {"metrics": ["loss", monitor]})
    cb.on_train_begin({})
    ran, lrs = [], []
    for epoch, v in enumerate(values):
        cb.on_epoch_begin(epoch, {})
        cb.on_epoch_end(epoch, {"loss": 0.0, monitor: v})
        ran.append(epoch)
        lrs.append(opt.lr)
        if model.stop_training:
            break
    return ran, lrs


@pytest.mark.parametrize("monitor, values, patience, min_delta, mode, ran, best", [
    ("val_loss", [1.0, 0.9, 0.95, 0.91, 0.92, 0.5], 2, 0.0, "auto", [0, 1, 2, 3], 0.9),  # 2 epochs, no new low
    ("val_loss", [1.0, 0.9, 0.95, 0.85, 0.92, 0.5], 2, 0.0, "auto", [0, 1, 2, 3, 4, 5], 0.5),
    ("val_loss", [1.0, 0.99, 0.98, 0.97], 1, 0.05, "min", [0, 1], 1.0),                  # gains below min_delta
    ("val_loss", [1.0, 2.0], 0, 0.0, "max", [0, 1], 2.0),
    ("val_accuracy", [0.5, 0.4, 0.6], 0, 0.0, "auto", [0, 1], 0.5),                      # "acc": maximise
])
def test_early_stopping_counts_epochs_without_improvement(monitor, values, patience, min_delta, mode, ran, best):
    cb = EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta, mode=mode)
    assert drive(cb, values, monitor)[0] == ran
    assert cb.best == best
    assert cb.stopped_epoch == (ran[-1] if len(ran) < len(values) else None)


def _diverging_validation(restore):
    """Training on (X, y) while validating on relabelled data: val_loss rises after epoch 0."""
    X, y = blobs(n=96)
    net = small_net()
    cb = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=restore)
    h = net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net, lr=0.05), epochs=50, batch_size=16,
                validation_data=(X, (y + 1) % 3), callbacks=[cb], verbose=0)
    return net, cb, h


def test_early_stopping_stops_and_restores_the_best_weights():
    net, cb, h = _diverging_validation(restore=True)
    assert h["val_loss"][1] > h["val_loss"][0] and cb.best_epoch == 0
    assert cb.stopped_epoch == 2 and h.epoch == [0, 1, 2]
    X, y = blobs(n=96)
    ref = small_net()
    ref.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(ref, lr=0.05), epochs=1, batch_size=16, verbose=0)
    assert np.array_equal(weights(net), weights(ref))
    kept, _, _ = _diverging_validation(restore=False)
    assert not np.array_equal(weights(kept), weights(ref))  # without restoring: the last epoch's weights


def test_early_stopping_restores_batchnorm_running_statistics_too():
    X, y = blobs(n=64)
    net = nb.Sequential([nb.Dense(12, 8), nb.BatchNorm1d(8), nb.ReLU(), nb.Dense(8, 3)])
    snapshots = []
    cb = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True, mode="max")  # best = epoch 0
    net.fit(X, y, loss="cross_entropy", epochs=3, callbacks=[cb, lambda e, l: snapshots.append(net.state_dict())],
            verbose=0)
    assert cb.best_epoch == 0
    for k, v in net.state_dict().items():
        assert np.array_equal(v, snapshots[0][k]), k


def test_early_stopping_without_validation_data_names_the_fix():
    X, y = blobs(n=32)
    with pytest.raises(ValueError, match="val_loss.*validation_data"):
        small_net().fit(X, y, loss="cross_entropy", callbacks=[EarlyStopping()], verbose=0)


def test_model_checkpoint_saves_only_improvements_with_epoch_in_name_and_header(tmp_path):
    X, y = blobs(n=96)
    net = small_net()
    path = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.nbp")
    seen = {}
    net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net, lr=0.05), epochs=4, batch_size=16,
            validation_data=(X, (y + 1) % 3), verbose=0,
            callbacks=[ModelCheckpoint(path, save_best_only=True),
                       lambda e, logs: seen.setdefault(e, (logs["val_loss"], net.predict(X)))])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"ckpt-01-{seen[0][0]:.3f}.nbp"]  # val_loss only rose after epoch 0
    header = nb.io.read_header(tmp_path / files[0])
    assert header["meta"] == {"epoch": 1, "val_loss": seen[0][0]} and header["optimizer"]["kind"] == "Adam"
    assert np.array_equal(nb.load(tmp_path / files[0]).predict(X), seen[0][1])


def test_model_checkpoint_every_epoch_overwrites_one_path(tmp_path):
    X, y = blobs(n=32)
    net = small_net()
    net.fit(X, y, loss="cross_entropy", epochs=3, verbose=0,
            callbacks=[ModelCheckpoint(tmp_path / "last.nbp", save_optimizer=False)])
    assert [p.name for p in tmp_path.iterdir()] == ["last.nbp"]
    header = nb.io.read_header(tmp_path / "last.nbp")
    assert header["meta"]["epoch"] == 3 and header["optimizer"] is None
    assert np.array_equal(nb.load(tmp_path / "last.nbp").predict(X), net.predict(X))


def test_learning_rate_scheduler_sets_lr_before_each_epoch():
    X, y = blobs(n=32)
    net = small_net()
    opt = nb.optim.SGD(net, lr=0.1)
    h = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=4, verbose=0,
                callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)])
    assert h["lr"] == [0.1, 0.05, 0.025, 0.0125] and opt.lr == 0.0125
    with pytest.raises(ValueError, match="schedule"):
        net.fit(X, y, loss="cross_entropy", epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: -1)])


def test_reduce_lr_on_plateau_waits_patience_then_cools_down_and_floors():
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2, min_delta=0.0)
    _, lrs = drive(cb, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6])
    # plateau from epoch 1: reduce at 2, cool down at 3, count 4-5, reduce at 5, ... floor 0.2
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2]


def test_a_plain_function_returning_true_stops_training():
    X, y = blobs(n=32)
    h = small_net().fit(X, y, loss="cross_entropy", epochs=10, verbose=0, callbacks=lambda e, logs: e == 3)
    assert h.epoch == [0, 1, 2, 3]


def test_callback_hooks_run_in_order_with_context():
    calls = []

    class Spy(nb.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(("begin", self.params["epochs"], type(self.optimizer).__name__))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch, sorted(logs)))

        def on_train_end(self, logs=None):
            calls.append(("end", logs["interrupted"]))

    X, y = blobs(n=32)
    small_net().fit(X, y, loss="cross_entropy", epochs=2, metrics=["accuracy"], verbose=0, callbacks=[Spy()])
    keys = ["accuracy", "loss", "lr"]
    assert calls == [("begin", 2, "Adam"), ("epoch_begin", 0), ("epoch_end", 0, keys), ("epoch_begin", 1),
                     ("epoch_end", 1, keys), ("end", False)]


# --------------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule, closed_form", [
    (StepLR(step_size=3, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 3)),
    (MultiStepLR(milestones=[5, 2, 7], gamma=0.1), lambda e: 0.1 * 0.1 ** ((e >= 2) + (e >= 5) + (e >= 7))),
    (ExponentialLR(gamma=0.9), lambda e: 0.1 * 0.9 ** e),
    (CosineAnnealingLR(T_max=6, eta_min=0.01), lambda e: 0.01 + 0.09 * (1 + math.cos(math.pi * e / 6)) / 2),
    (LinearLR(start_factor=0.25, end_factor=1.0, total_iters=4), lambda e: 0.1 * (0.25 + 0.75 * min(e, 4) / 4)),
])
def test_schedule_matches_its_closed_form(schedule, closed_form):
    _, lrs = drive(schedule, [0.0] * 12, lr=0.1)
    assert lrs == pytest.approx([closed_form(e) for e in range(12)], rel=1e-14)
    assert [schedule.lr_at(e, base_lr=0.1) for e in (0, 3)] == pytest.approx([closed_form(0), closed_form(3)])


def test_schedules_agree_with_torch_lr_schedulers():
    torch = pytest.importorskip("torch")
    pairs = [(StepLR(3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
             (MultiStepLR([2, 5], 0.1), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1)),
             (ExponentialLR(0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
             (CosineAnnealingLR(6, 0.01), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 6, 0.01)),
             (LinearLR(0.25, 1.0, 4), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 4))]
    for ours, make in pairs:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched, theirs = make(opt), []
        for _ in range(7):  # within T_max, where torch's recursive form equals the closed one
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert [ours.lr_at(e, base_lr=0.1) for e in range(7)] == pytest.approx(theirs, rel=1e-12), type(ours)


def test_a_resumed_fit_continues_the_schedule_from_the_initial_lr():
    X, y = blobs(n=32)
    net = small_net()
    opt = nb.optim.SGD(net, lr=0.1)
    h1 = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, verbose=0, callbacks=[StepLR(1, 0.5)])
    h2 = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, initial_epoch=2, verbose=0,
                 callbacks=[StepLR(1, 0.5)])
    assert h1["lr"] + h2["lr"] == [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("make, error", [
    (lambda: StepLR(0), ValueError), (lambda: MultiStepLR("ab"), TypeError), (lambda: LinearLR(0.0), ValueError),
    (lambda: EarlyStopping(mode="up"), ValueError), (lambda: ReduceLROnPlateau(factor=1.5), ValueError),
    (lambda: ModelCheckpoint(3), TypeError), (lambda: LearningRateScheduler(0.1), TypeError),
    (lambda: StepLR(2).lr_at(1), ValueError),
])
def test_callbacks_reject_bad_arguments(make, error):
    with pytest.raises(error):
        make()
