"""Every entry point refuses bad arguments with ValueError/TypeError (or MemoryError) whose message
names the argument and what it received, before the engine touches memory; inputs that can be
converted (lists, ints, float16, Fortran order, strided, read-only, big-endian, misaligned) give
the same result as a C-contiguous array of the network's dtype. A crash in any of these would kill
the pytest process itself, so a clean run also proves nothing segfaults or aborts."""
import os
import types

import numpy as np
import pytest

import nativebp as nb
from nativebp import _core


def state():
    """A small classifier (3 -> 2 classes), its optimizer and a matching batch."""
    net = nb.Sequential([nb.Dense(3, 4), nb.ReLU(), nb.Dense(4, 2)], seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3)).astype(np.float32)
    return types.SimpleNamespace(net=net, opt=nb.optim.SGD(net, lr=0.1), X=X, y=np.array([0, 1, 0, 1, 1]),
                                 Y=rng.standard_normal((5, 2)).astype(np.float32))


def spec(**over):
    """An engine layer spec for Dense(3, 2), with fields replaced."""
    return dict(dict(type="dense", in_features=3, out_features=2, bias=True, init="zeros", init_arg=0.1,
                     bias_init="zeros"), **over)


def trainer(s, X=None, y=None, net=None, opt=None, batch_size=2, loss="cross_entropy", l1=0.0):
    return _core.Trainer32(s.net._engine if net is None else net, s.opt._engine if opt is None else opt,
                           s.X if X is None else X, s.y if y is None else y, loss, 1.0, batch_size, True, 0, None,
                           l1, 0.0, 0.0, 0.0, True, False)


def ce_step(s, y, **kw):
    return s.net.train_step(s.X, y, loss="cross_entropy", optimizer=s.opt, **kw)


def other_network_optimizer(s):
    """A raw optimizer sized for a 2-parameter-tensor, 8-value network, used on a bigger one."""
    return _core.Adam32(nb.Sequential([nb.Dense(3, 2)])._engine, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False)


NAN_X = np.array([[0.0, np.nan, 1.0]])

# (id, call on a fresh state, exception type, substrings the message must contain: the argument
# and what was received)
CASES = [
    # ------------------------------------------------------------------ data: X
    ("X-wrong-feature-count", lambda s: s.net.forward(np.zeros((5, 4))), ValueError, ["X", "3 features", "(5, 4)"]),
    ("X-1d", lambda s: s.net.forward(np.zeros(3)), ValueError, ["X", "2-D", "1-D", "reshape"]),
    ("X-3d", lambda s: s.net.forward(np.zeros((2, 3, 1))), ValueError, ["X", "2-D", "(2, 3, 1)"]),
    ("X-scalar", lambda s: s.net.forward(3.0), ValueError, ["X", "2-D", "0-D"]),
    ("X-empty", lambda s: s.net.forward(np.zeros((0, 3))), ValueError, ["X", "at least one sample", "(0, 3)"]),
    ("X-zero-width", lambda s: s.net.forward(np.zeros((2, 0))), ValueError, ["X", "3 features", "(2, 0)"]),
    ("X-nan", lambda s: s.net.forward(NAN_X), ValueError, ["X", "finite", "nan", "(0, 1)"]),
    ("X-inf", lambda s: s.net.predict(np.array([[1.0, 2.0, -np.inf]])), ValueError, ["X", "finite", "-inf"]),
    ("X-overflows-float32", lambda s: s.net.forward(np.array([[1e300, 0.0, 0.0]])), ValueError,
     ["X", "overflow float32", "1e+300"]),
    ("X-object-dtype", lambda s: s.net.forward(np.array([[1, 2, "a"]], dtype=object)), TypeError, ["X", "object"]),
    ("X-huge-python-int", lambda s: s.net.forward([[10**40, 1, 2]]), TypeError, ["X", "object"]),
    ("X-strings", lambda s: s.net.forward(np.array([["a", "b", "c"]])), TypeError, ["X", "numeric", "<U1"]),
    ("X-complex", lambda s: s.net.forward(np.zeros((2, 3), complex)), TypeError, ["X", "real", "complex128"]),
    ("X-datetime", lambda s: s.net.forward(np.zeros((2, 3), "datetime64[s]")), TypeError, ["X", "numeric", "datetime64"]),
    ("X-ragged-list", lambda s: s.net.forward([[1, 2, 3], [1, 2]]), TypeError, ["X", "array-like"]),
    ("X-None", lambda s: s.net.forward(None), TypeError, ["X", "object"]),
    ("X-nan-in-train-step", lambda s: s.net.train_step(NAN_X, [0], loss="cross_entropy", optimizer=s.opt),
     ValueError, ["X", "finite", "nan"]),
    # ------------------------------------------------------------------ data: y
    ("y-length-mismatch", lambda s: ce_step(s, s.y[:3]), ValueError, ["y", "5 targets", "got 3"]),
    ("y-labels-too-big", lambda s: ce_step(s, s.y + 5), ValueError, ["y", "[0, 2)", "[5, 6]"]),
    ("y-labels-negative", lambda s: ce_step(s, s.y - 1), ValueError, ["y", "[0, 2)", "[-1, 0]"]),
    ("y-labels-fractional", lambda s: ce_step(s, s.y + 0.5), ValueError, ["y", "integers", "0.5 at index 0"]),
    ("y-labels-nan", lambda s: ce_step(s, np.array([0, 1, np.nan, 0, 1])), ValueError, ["y", "integers", "nan"]),
    ("y-labels-uint64-huge", lambda s: ce_step(s, np.array([0, 1, 2**64 - 1, 0, 1], np.uint64)), ValueError,
     ["y", "[0, 2)", "18446744073709551615"]),
    ("y-labels-object", lambda s: ce_step(s, np.array([0, 1, 0, 1, None])), TypeError, ["y", "object"]),
    ("y-labels-strings", lambda s: ce_step(s, np.array(list("abcde"))), TypeError, ["y", "numeric", "<U1"]),
    ("y-scalar", lambda s: ce_step(s, 1), ValueError, ["y", "one target per sample", "scalar"]),
    ("y-onehot-wrong-width", lambda s: ce_step(s, np.zeros((5, 3))), ValueError, ["y", "(5, 2)", "(5, 3)"]),
    ("y-3d", lambda s: s.net.train_step(s.X, np.zeros((5, 2, 1)), loss="mse", optimizer=s.opt), ValueError,
     ["y", "(5, 2)", "(5, 2, 1)"]),
    ("y-1d-for-2-outputs", lambda s: s.net.loss_and_grad(s.X, np.zeros(5), loss="mse"), ValueError,
     ["y", "(5, 2)", "(5,)"]),
    ("y-nan", lambda s: s.net.loss_and_grad(s.X, np.full((5, 2), np.nan), loss="mse"), ValueError,
     ["y", "finite", "nan"]),
    ("y-inf", lambda s: s.net.loss(s.X, np.full((5, 2), np.inf), loss="huber"), ValueError, ["y", "finite", "inf"]),
    ("y-overflows-float32", lambda s: s.net.loss_and_grad(s.X, np.full((5, 2), 1e200), loss="mse"), ValueError,
     ["y", "overflow float32"]),
    # ------------------------------------------------------------------ method arguments
    ("loss-unknown", lambda s: s.net.loss_and_grad(s.X, s.y, loss="foo"), ValueError, ["loss", "cross_entropy", "'foo'"]),
    ("loss-not-a-string", lambda s: s.net.loss_and_grad(s.X, s.y, loss=3), TypeError, ["loss", "int 3"]),
    ("delta-negative", lambda s: s.net.loss_and_grad(s.X, s.Y, loss="huber", delta=-1.0), ValueError,
     ["delta", "> 0"]),
    ("delta-string", lambda s: s.net.loss_and_grad(s.X, s.Y, loss="huber", delta="1"), TypeError, ["delta", "str"]),
    ("delta-nan", lambda s: s.net.loss(s.X, s.Y, loss="huber", delta=float("nan")), ValueError, ["delta", "nan"]),
    ("train-step-no-optimizer", lambda s: s.net.train_step(s.X, s.y, loss="cross_entropy"), TypeError,
     ["optimizer", "needs"]),
    ("train-step-foreign-optimizer", lambda s: s.net.train_step(
        s.X, s.y, loss="cross_entropy", optimizer=nb.optim.Adam(nb.Sequential([nb.Dense(3, 2)]))),
     ValueError, ["optimizer", "another network"]),
    ("l1-negative", lambda s: ce_step(s, s.y, l1=-1), ValueError, ["l1", ">= 0", "-1"]),
    ("l2-string", lambda s: ce_step(s, s.y, l2="0.1"), TypeError, ["l2", "str"]),
    ("l2-inf", lambda s: ce_step(s, s.y, l2=float("inf")), ValueError, ["l2", "finite", "inf"]),
    ("clip-norm-negative", lambda s: ce_step(s, s.y, clip_norm=-1), ValueError, ["clip_norm", "positive", "-1"]),
    ("clip-value-zero", lambda s: ce_step(s, s.y, clip_value=0), ValueError, ["clip_value", "positive", "0"]),
    ("clip-grad-norm-nan", lambda s: s.net.clip_grad_norm(float("nan")), ValueError, ["max_norm", "nan"]),
    ("predict-batch-size-zero", lambda s: s.net.predict(s.X, batch_size=0), ValueError, ["batch_size", ">= 1", "0"]),
    ("predict-batch-size-float", lambda s: s.net.predict(s.X, batch_size=2.5), TypeError, ["batch_size", "float"]),
    ("astype-int8", lambda s: s.net.astype("int8"), ValueError, ["dtype", "'int8'"]),
    ("gradcheck-max-checks-zero", lambda s: nb.gradcheck(s.net, s.X, s.y, loss="cross_entropy", max_checks=0),
     ValueError, ["max_checks", ">= 1"]),
    ("gradcheck-seed-negative", lambda s: nb.gradcheck(s.net, s.X, s.y, loss="cross_entropy", seed=-1),
     ValueError, ["seed", ">= 0", "-1"]),
    ("set-num-threads-zero", lambda s: nb.set_num_threads(0), ValueError, ["n", ">= 1", "0"]),
    ("set-num-threads-huge", lambda s: nb.set_num_threads(10**6), ValueError, ["n", "4096", "1000000"]),
    ("set-num-threads-float", lambda s: nb.set_num_threads(2.0), TypeError, ["n", "float"]),
    # ------------------------------------------------------------------ Sequential
    ("Sequential-layers-None", lambda s: nb.Sequential(None), TypeError, ["layers", "NoneType"]),
    ("Sequential-layers-int", lambda s: nb.Sequential([3]), TypeError, ["layers", "int"]),
    ("Sequential-layers-unknown-name", lambda s: nb.Sequential([nb.Dense(2, 2), "relu6"]), ValueError,
     ["activation", "'relu6'"]),
    ("Sequential-no-width", lambda s: nb.Sequential([]), ValueError, ["in_features", "inferred"]),
    ("Sequential-widths-mismatch", lambda s: nb.Sequential([nb.Dense(3, 4), nb.Dense(5, 2)]), ValueError,
     ["layer 1", "Dense(5, 2)", "width 4"]),
    ("Sequential-in-features-mismatch", lambda s: nb.Sequential([nb.Dense(3, 4)], in_features=5), ValueError,
     ["layer 0", "width 5"]),
    ("Sequential-residual-changes-width", lambda s: nb.Sequential([nb.Residual([nb.Dense(3, 4)])]), ValueError,
     ["residual", "3 to 4"]),
    ("Sequential-dtype-int", lambda s: nb.Sequential([nb.Dense(2, 2)], dtype=int), ValueError, ["dtype", "float32"]),
    ("Sequential-dtype-float16", lambda s: nb.Sequential([nb.Dense(2, 2)], dtype="float16"), ValueError,
     ["dtype", "'float16'"]),
    ("Sequential-seed-negative", lambda s: nb.Sequential([nb.Dense(2, 2)], seed=-1), ValueError, ["seed", "-1"]),
    ("Sequential-seed-too-big", lambda s: nb.Sequential([nb.Dense(2, 2)], seed=2**70), ValueError,
     ["seed", str(2**70)]),
    ("Sequential-seed-string", lambda s: nb.Sequential([nb.Dense(2, 2)], seed="0"), TypeError, ["seed", "str"]),
    ("Sequential-in-features-zero", lambda s: nb.Sequential(["relu"], in_features=0), ValueError,
     ["in_features", ">= 1", "0"]),
    # ------------------------------------------------------------------ absurd sizes
    ("Dense-10**12-units", lambda s: nb.Sequential([nb.Dense(10**12, 1)]), ValueError, ["layers[0]", "1000000000000"]),
    ("Dense-10**6-squared", lambda s: nb.Sequential([nb.Dense(10**6, 10**6)]), ValueError, ["layers[0]", "too many"]),
    ("BatchNorm1d-10**12", lambda s: nb.Sequential([nb.BatchNorm1d(10**12)]), ValueError,
     ["layers", "2000000000000 parameters"]),
    ("LayerNorm-2**62", lambda s: nb.Sequential([nb.LayerNorm(2**62)]), ValueError, ["layers", "parameters"]),
    ("Residual-10**12", lambda s: nb.Sequential([nb.Residual([nb.Dense(10**12, 10**12)])]), ValueError,
     ["layers[0]: layers[0]", "too many"]),
    # ------------------------------------------------------------------ layer constructors
    ("Dense-in-zero", lambda s: nb.Dense(0, 3), ValueError, ["in_features", ">= 1", "0"]),
    ("Dense-out-negative", lambda s: nb.Dense(3, -2), ValueError, ["out_features", "-2"]),
    ("Dense-in-float", lambda s: nb.Dense(3.0, 2), TypeError, ["in_features", "float"]),
    ("Dense-out-string", lambda s: nb.Dense(3, "2"), TypeError, ["out_features", "str"]),
    ("Dense-in-bool", lambda s: nb.Dense(True, 2), TypeError, ["in_features", "bool"]),
    ("Dense-bias-int", lambda s: nb.Dense(3, 2, bias=1), TypeError, ["bias", "True or False", "1"]),
    ("Dense-init-unknown", lambda s: nb.Dense(3, 2, init="glorot"), ValueError, ["init", "'glorot'"]),
    ("Dense-bias-init-unknown", lambda s: nb.Dense(3, 2, bias_init=0), ValueError, ["bias_init", "0"]),
    ("Dense-init-arg-negative", lambda s: nb.Dense(3, 2, init_arg=-1), ValueError, ["init_arg", "-1"]),
    ("Dense-init-arg-string", lambda s: nb.Dense(3, 2, init_arg="a"), TypeError, ["init_arg", "str"]),
    ("LeakyReLU-alpha-string", lambda s: nb.LeakyReLU("0.1"), TypeError, ["alpha", "str"]),
    ("LeakyReLU-alpha-nan", lambda s: nb.LeakyReLU(float("nan")), ValueError, ["alpha", "nan"]),
    ("ELU-alpha-negative", lambda s: nb.ELU(-1.0), ValueError, ["alpha", "-1"]),
    ("ELU-alpha-None", lambda s: nb.ELU(None), TypeError, ["alpha", "NoneType"]),
    ("Softplus-beta-zero", lambda s: nb.Softplus(beta=0), ValueError, ["beta", "> 0", "0"]),
    ("Softplus-threshold-string", lambda s: nb.Softplus(threshold="20"), TypeError, ["threshold", "str"]),
    ("Dropout-p-one", lambda s: nb.Dropout(1.0), ValueError, ["p", "< 1", "1.0"]),
    ("Dropout-p-negative", lambda s: nb.Dropout(-0.1), ValueError, ["p", ">= 0", "-0.1"]),
    ("Dropout-p-string", lambda s: nb.Dropout("0.5"), TypeError, ["p", "str"]),
    ("BatchNorm1d-features-zero", lambda s: nb.BatchNorm1d(0), ValueError, ["num_features", ">= 1", "0"]),
    ("BatchNorm1d-features-float", lambda s: nb.BatchNorm1d(4.0), TypeError, ["num_features", "float"]),
    ("BatchNorm1d-eps-zero", lambda s: nb.BatchNorm1d(4, eps=0), ValueError, ["eps", "> 0", "0"]),
    ("BatchNorm1d-momentum-two", lambda s: nb.BatchNorm1d(4, momentum=2), ValueError, ["momentum", "<= 1", "2"]),
    ("BatchNorm1d-affine-string", lambda s: nb.BatchNorm1d(4, affine="yes"), TypeError, ["affine", "'yes'"]),
    ("LayerNorm-features-negative", lambda s: nb.LayerNorm(-4), ValueError, ["num_features", "-4"]),
    ("LayerNorm-eps-string", lambda s: nb.LayerNorm(4, eps="1e-5"), TypeError, ["eps", "str"]),
    ("LayerNorm-affine-int", lambda s: nb.LayerNorm(4, elementwise_affine=0), TypeError, ["elementwise_affine", "0"]),
    ("Residual-layers-int", lambda s: nb.Residual(3), TypeError, ["layers", "int"]),
    ("Residual-layers-list-of-None", lambda s: nb.Residual([None]), TypeError, ["layers", "NoneType"]),
    # ------------------------------------------------------------------ optimizer constructors
    ("optim-params-int", lambda s: nb.optim.Adam(3), TypeError, ["params", "int"]),
    ("optim-params-empty", lambda s: nb.optim.SGD([]), TypeError, ["params", "non-empty"]),
    ("optim-params-two-networks", lambda s: nb.optim.SGD(s.net.parameters() + nb.Sequential([nb.Dense(3, 2)])
                                                         .parameters()), ValueError, ["params", "one network"]),
    ("SGD-lr-negative", lambda s: nb.optim.SGD(s.net, lr=-1), ValueError, ["lr", ">= 0", "-1"]),
    ("SGD-lr-string", lambda s: nb.optim.SGD(s.net, lr="0.1"), TypeError, ["lr", "str"]),
    ("SGD-lr-inf", lambda s: nb.optim.SGD(s.net, lr=float("inf")), ValueError, ["lr", "finite", "inf"]),
    ("SGD-momentum-negative", lambda s: nb.optim.SGD(s.net, momentum=-0.9), ValueError, ["momentum", "-0.9"]),
    ("SGD-dampening-None", lambda s: nb.optim.SGD(s.net, dampening=None), TypeError, ["dampening", "NoneType"]),
    ("SGD-weight-decay-nan", lambda s: nb.optim.SGD(s.net, weight_decay=float("nan")), ValueError,
     ["weight_decay", "nan"]),
    ("SGD-nesterov-string", lambda s: nb.optim.SGD(s.net, momentum=0.9, nesterov="no"), TypeError,
     ["nesterov", "True or False", "'no'"]),
    ("SGD-nesterov-without-momentum", lambda s: nb.optim.SGD(s.net, nesterov=True), ValueError,
     ["nesterov", "momentum"]),
    ("Adagrad-lr-decay-negative", lambda s: nb.optim.Adagrad(s.net, lr_decay=-1), ValueError, ["lr_decay", "-1"]),
    ("Adagrad-initial-accumulator-string", lambda s: nb.optim.Adagrad(s.net, initial_accumulator_value="0"),
     TypeError, ["initial_accumulator_value", "str"]),
    ("Adagrad-eps-negative", lambda s: nb.optim.Adagrad(s.net, eps=-1e-10), ValueError, ["eps", "-1e-10"]),
    ("RMSprop-alpha-string", lambda s: nb.optim.RMSprop(s.net, alpha="0.99"), TypeError, ["alpha", "str"]),
    ("RMSprop-momentum-inf", lambda s: nb.optim.RMSprop(s.net, momentum=float("inf")), ValueError,
     ["momentum", "inf"]),
    ("RMSprop-centered-int", lambda s: nb.optim.RMSprop(s.net, centered=1), TypeError, ["centered", "1"]),
    ("Adam-betas-out-of-range", lambda s: nb.optim.Adam(s.net, betas=(1.5, 0.9)), ValueError, ["betas", "1.5"]),
    ("Adam-betas-one-number", lambda s: nb.optim.Adam(s.net, betas=0.9), TypeError, ["betas", "pair", "0.9"]),
    ("Adam-betas-strings", lambda s: nb.optim.Adam(s.net, betas=("a", "b")), TypeError, ["betas", "'a'"]),
    ("Adam-eps-string", lambda s: nb.optim.Adam(s.net, eps="1e-8"), TypeError, ["eps", "str"]),
    ("Adam-amsgrad-string", lambda s: nb.optim.Adam(s.net, amsgrad="no"), TypeError, ["amsgrad", "'no'"]),
    ("AdamW-weight-decay-negative", lambda s: nb.optim.AdamW(s.net, weight_decay=-0.01), ValueError,
     ["weight_decay", "-0.01"]),
    ("optimizer-lr-set-nan", lambda s: setattr(s.opt, "lr", float("nan")), ValueError, ["lr", "nan"]),
    # ------------------------------------------------------------------ the raw engine (nativebp._core)
    ("core-Network-spec-missing-key", lambda s: _core.Network32([{"type": "dense"}], 3, 0), ValueError,
     ["layers[0]", "missing key"]),
    ("core-Network-spec-type-int", lambda s: _core.Network32([{"type": 3}], 3, 0), TypeError,
     ["layers[0]", "'type'", "int 3"]),
    ("core-Network-spec-not-dict", lambda s: _core.Network32(["relu"], 3, 0), TypeError,
     ["layers[0]", "dict", "str"]),
    ("core-Network-spec-None", lambda s: _core.Network32([None], 3, 0), TypeError, ["layers[0]", "NoneType"]),
    ("core-Network-spec-unknown-type", lambda s: _core.Network32([{"type": "conv2d"}], 3, 0), ValueError,
     ["layers[0]", "'conv2d'"]),
    ("core-Network-in-features-string", lambda s: _core.Network32([spec(in_features="3")], 3, 0), TypeError,
     ["layers[0]", "'in_features'", "str"]),
    ("core-Network-in-features-2**70", lambda s: _core.Network32([spec(in_features=2**70)], 3, 0), TypeError,
     ["layers[0]", "'in_features'", "64-bit", str(2**70)]),
    ("core-Network-out-features-negative", lambda s: _core.Network32([spec(out_features=-1)], 3, 0), ValueError,
     ["layers[0]", "out_features", "-1"]),
    ("core-Network-bias-string", lambda s: _core.Network32([spec(bias="x")], 3, 0), TypeError,
     ["layers[0]", "'bias'", "'x'"]),
    ("core-Network-init-unknown", lambda s: _core.Network32([spec(init="nope")], 3, 0), ValueError,
     ["layers[0]", "init", "'nope'"]),
    ("core-Network-residual-layers-int", lambda s: _core.Network32([{"type": "residual", "layers": 5}], 3, 0),
     TypeError, ["layers[0]", "layers", "int"]),
    ("core-Network-residual-nested-bad", lambda s: _core.Network32([{"type": "residual", "layers": [
        {"type": "dense"}]}], 3, 0), ValueError, ["layers[0]: layers[0]", "missing key"]),
    ("core-Network-dropout-p-one", lambda s: _core.Network32([{"type": "dropout", "p": 1.0}], 3, 0), ValueError,
     ["layers[0]", "p", "[0, 1)"]),
    ("core-Network-batchnorm-eps-zero", lambda s: _core.Network32([{"type": "batchnorm1d", "num_features": 3,
                                                                    "eps": 0.0, "momentum": 0.1, "affine": True}],
                                                                  3, 0), ValueError, ["layers[0]", "eps"]),
    ("core-Network-layers-not-list", lambda s: _core.Network32("dense", 3, 0), TypeError, ["layers", "list"]),
    ("core-Network-in-features-zero", lambda s: _core.Network32([], 0, 0), ValueError, ["in_features", "0"]),
    ("core-Network-seed-negative", lambda s: _core.Network32([], 3, -1), TypeError, ["seed", "-1"]),
    ("core-forward-wrong-columns", lambda s: s.net._engine.forward(np.zeros((2, 5), np.float32)), ValueError,
     ["X", "3 columns", "5"]),
    ("core-forward-1d", lambda s: s.net._engine.forward(np.zeros(3, np.float32)), ValueError,
     ["X", "2-D", "1 dimensions"]),
    ("core-forward-empty", lambda s: s.net._engine.forward(np.zeros((0, 3), np.float32)), ValueError,
     ["X", "at least one row"]),
    ("core-forward-float64", lambda s: s.net._engine.forward(np.zeros((2, 3))), TypeError, ["X", "float32"]),
    ("core-loss-labels-out-of-range", lambda s: s.net._engine.loss_and_grad(s.X, np.array([0, 1, 9, 0, 1]),
                                                                           "cross_entropy", 1.0, False, True),
     ValueError, ["y", "[0, 2)", "9 at index 2"]),
    ("core-loss-labels-negative", lambda s: s.net._engine.evaluate(s.X, np.array([0, -1, 0, 0, 1]), "cross_entropy",
                                                                   1.0, 5, True, False), ValueError, ["y", "-1"]),
    ("core-loss-labels-for-mse", lambda s: s.net._engine.loss_and_grad(s.X, s.y, "mse", 1.0, False, True),
     ValueError, ["y", "cross_entropy"]),
    ("core-loss-labels-wrong-length", lambda s: s.net._engine.loss_and_grad(s.X, s.y[:2], "cross_entropy", 1.0,
                                                                           False, True), ValueError, ["y", "5", "2"]),
    ("core-loss-dense-y-wrong-dtype", lambda s: s.net._engine.loss_and_grad(s.X, np.zeros((5, 2)), "mse", 1.0,
                                                                           False, True), ValueError, ["y", "float32"]),
    ("core-loss-unknown", lambda s: s.net._engine.loss_and_grad(s.X, s.Y, "hinge", 1.0, False, True), ValueError,
     ["loss", "'hinge'"]),
    ("core-loss-huber-delta-negative", lambda s: s.net._engine.loss_and_grad(s.X, s.Y, "huber", -1.0, False, True),
     ValueError, ["loss", "delta"]),
    ("core-train-step-foreign-optimizer", lambda s: s.net._engine.train_step(
        s.X, s.y, "cross_entropy", 1.0, other_network_optimizer(s), None), ValueError,
     ["optimizer", "8 parameters", "this one has 26"]),
    ("core-step-foreign-optimizer", lambda s: s.net._engine.step(other_network_optimizer(s), None), ValueError,
     ["optimizer", "8 parameters"]),
    ("core-step-float64-optimizer", lambda s: s.net._engine.step(
        _core.SGD64(nb.Sequential([nb.Dense(3, 2)], dtype="float64")._engine, 0.1, 0, 0, 0, False), None),
     TypeError, ["optimizer", "SGD64"]),
    ("core-step-owned-wrong-length", lambda s: s.net._engine.step(s.opt._engine, [True]), ValueError,
     ["owned", "one flag per parameter"]),
    ("core-set-trainable-out-of-range", lambda s: s.net._engine.set_trainable(99, True), ValueError,
     ["set_trainable", "99"]),
    ("core-set-rng-state-garbage", lambda s: s.net._engine.set_rng_state("garbage"), ValueError, ["rng state"]),
    ("core-optimizer-steps-negative", lambda s: setattr(s.opt._engine, "steps", [-1, 0, 0, 0]), ValueError,
     ["steps", ">= 0", "-1"]),
    ("core-optimizer-state-unknown", lambda s: nb.optim.Adam(s.net)._engine.state_array("nope"), ValueError,
     ["state", "'nope'"]),
    ("core-Adam-float64-for-float32-network", lambda s: _core.Adam64(s.net._engine, 0.1, 0.9, 0.999, 1e-8, 0.0,
                                                                      False, False), TypeError, ["Network64"]),
    ("core-Trainer-labels-wrong-length", lambda s: trainer(s, y=s.y[:3]), ValueError, ["y", "5 labels", "3"]),
    ("core-Trainer-labels-out-of-range", lambda s: trainer(s, y=s.y + 7), ValueError, ["y", "[0, 2)", "7"]),
    ("core-Trainer-X-wrong-columns", lambda s: trainer(s, X=np.zeros((5, 2), np.float32)), ValueError,
     ["X", "3 columns", "2"]),
    ("core-Trainer-batch-size-zero", lambda s: trainer(s, batch_size=0), ValueError, ["batch_size", "0"]),
    ("core-Trainer-batch-size-negative", lambda s: trainer(s, batch_size=-5), ValueError, ["batch_size", "-5"]),
    ("core-Trainer-l1-negative", lambda s: trainer(s, l1=-1.0), ValueError, ["l1", ">= 0"]),
    ("core-Trainer-net-is-optimizer", lambda s: trainer(s, net=s.opt._engine), TypeError,
     ["net", "Network32", "SGD32"]),
    ("core-Trainer-net-None", lambda s: trainer(s, net=object()), TypeError, ["net", "object"]),
    ("core-Trainer-optimizer-is-network", lambda s: trainer(s, opt=s.net._engine), TypeError,
     ["optimizer", "float32 optimizer", "Network32"]),
    ("core-Trainer-foreign-optimizer", lambda s: trainer(s, opt=other_network_optimizer(s)), ValueError,
     ["optimizer", "8 parameters"]),
    ("core-set-num-threads-huge", lambda s: _core.set_num_threads(10**6), ValueError, ["n", "1000000"]),
]


@pytest.mark.parametrize("call,exc,words", [pytest.param(c, e, w, id=i) for i, c, e, w in CASES])
def test_bad_input_raises_a_clear_error(call, exc, words):
    s = state()
    with pytest.raises(exc) as info:
        call(s)
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"{type(info.value).__name__}: {message!r} does not mention {missing}"


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


# Arrays already in the engine's layout and dtype take a fast path (one C++ pass decides whether
# Python's checks can be skipped): bad values there must meet the same errors as anywhere else.
READY = [
    ("nan-X-forward", lambda s: s.net.forward(_f32(np.where(np.eye(5, 3) > 0, np.nan, 1))), ["X", "nan", "(0, 0)"]),
    ("inf-X-predict", lambda s: s.net.predict(_f32(np.full((2, 3), -np.inf))), ["X", "-inf"]),
    ("nan-X-last-element", lambda s: s.net.forward(_f32(np.r_[np.ones(14), np.nan].reshape(5, 3))),
     ["X", "nan", "(4, 2)"]),
    ("nan-X-train-step", lambda s: s.net.train_step(_f32(NAN_X), np.array([0]), loss="cross_entropy",
                                                    optimizer=s.opt), ["X", "nan"]),
    ("labels-int64-too-big", lambda s: ce_step(s, np.array([0, 1, 2, 0, 1], np.int64)), ["y", "[0, 2)", "2]"]),
    ("labels-int64-negative", lambda s: ce_step(s, np.array([0, 1, 0, -1, 1], np.int64)), ["y", "[-1, 1]"]),
    ("labels-int64-wrong-length", lambda s: ce_step(s, np.array([0, 1], np.int64)), ["y", "5 targets", "2"]),
    ("labels-int64-huge", lambda s: ce_step(s, np.array([0, 1, 2**62, 0, 1], np.int64)), ["y", str(2**62)]),
    ("dense-y-nan", lambda s: s.net.train_step(s.X, _f32(np.full((5, 2), np.nan)), loss="mse", optimizer=s.opt),
     ["y", "nan"]),
    ("dense-y-wrong-rows", lambda s: s.net.loss_and_grad(s.X, _f32(np.zeros((4, 2))), loss="mse"),
     ["y", "5 targets", "4"]),
    ("X-float32-wrong-columns", lambda s: s.net.forward(_f32(np.zeros((5, 4)))), ["X", "3 features", "(5, 4)"]),
    ("X-float32-no-rows", lambda s: s.net.forward(_f32(np.zeros((0, 3)))), ["X", "at least one sample"]),
    ("X-float32-1d", lambda s: s.net.forward(_f32(np.zeros(3))), ["X", "2-D"]),
]


@pytest.mark.parametrize("call,words", [pytest.param(c, w, id=i) for i, c, w in READY])
def test_bad_values_in_engine_ready_arrays_raise_the_same_clear_errors(call, words):
    s = state()
    with pytest.raises(ValueError) as info:
        call(s)
    missing = [w for w in words if w not in str(info.value)]
    assert not missing, f"{info.value!r} does not mention {missing}"


def test_case_ids_are_unique():
    for table in (CASES, READY):
        ids = [c[0] for c in table]
        assert len(ids) == len(set(ids))


def test_a_failed_call_leaves_the_network_usable_and_unchanged():
    """Every case above runs on a fresh state; here the same network takes every bad call in turn
    and must still compute exactly what it computed before."""
    s = state()
    before = s.net.forward(s.X)
    for _, call, exc, _ in CASES:
        try:
            call(s)
        except (ValueError, TypeError, MemoryError):
            pass
    s.opt.lr = 0.1
    np.testing.assert_array_equal(s.net.forward(s.X), before)
    assert np.isfinite(s.net.train_step(s.X, s.y, loss="cross_entropy", optimizer=s.opt))


# ---------------------------------------------------------------------- conversions that must just work
def _big_endian(X):
    return X.astype(X.dtype.newbyteorder(">"))


def _misaligned(X):
    buf = np.zeros(X.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=np.float32, count=X.size, offset=1).reshape(X.shape)
    out[...] = X
    assert not out.flags.aligned
    return out


def _read_only(X):
    X = X.copy()
    X.setflags(write=False)
    return X


CONVERSIONS = {
    "fortran-order": np.asfortranarray,
    "strided-view": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "transposed-view": lambda X: np.ascontiguousarray(X.T).T,
    "read-only": _read_only,
    "float64": lambda X: X.astype(np.float64),
    "float16-exact": lambda X: X.astype(np.float16),
    "int64": lambda X: X.astype(np.int64),
    "uint8": lambda X: X.astype(np.uint8),
    "bool": lambda X: X > 0,
    "python-list": lambda X: X.tolist(),
    "tuple-of-tuples": lambda X: tuple(map(tuple, X.tolist())),
    "big-endian": _big_endian,
    "misaligned": _misaligned,
}


@pytest.mark.parametrize("name", CONVERSIONS)
def test_convertible_inputs_give_the_same_result_as_a_c_float32_array(name):
    s = state()
    X = np.round(s.X * 4) / 4  # exact in float16 and integer-valued after int casts below
    if name in ("int64", "uint8"):
        X = np.abs(np.round(X * 4))
    X = X.astype(np.float32)
    converted = CONVERSIONS[name](X)
    reference = np.asarray(converted, dtype=np.float32).copy(order="C")
    np.testing.assert_array_equal(s.net.forward(converted), s.net.forward(reference))
    y = np.asarray(s.y)
    for labels in (y.astype(np.int32), y.astype(np.float64), y.tolist(), y.reshape(-1, 1), _read_only(y)):
        assert s.net.loss(converted, labels, loss="cross_entropy") == s.net.loss(reference, y, loss="cross_entropy")


def test_integer_and_float64_inputs_are_not_modified():
    s = state()
    X = (s.X * 10).astype(np.int64)
    X64 = s.X.astype(np.float64)
    keep = X.copy(), X64.copy()
    s.net.train_step(X, s.y, loss="cross_entropy", optimizer=s.opt)
    s.net.train_step(X64, s.y, loss="cross_entropy", optimizer=s.opt)
    np.testing.assert_array_equal(X, keep[0])
    np.testing.assert_array_equal(X64, keep[1])


# ---------------------------------------------------------------------- memory limits
def _physical_memory():
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGESIZE")


def _overcommit_always():
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            return f.read().strip() == "1"
    except OSError:
        return True  # unknown: assume the kernel would hand out memory it does not have


@pytest.mark.skipif(_physical_memory() >= 128 * 2**30, reason="this machine could allocate the network")
def test_a_network_larger_than_memory_raises_memory_error_before_allocating():
    # 2**33 float64 parameters (the engine's limit) plus their gradients: 128 GiB
    with pytest.raises(MemoryError, match=r"layers: .* need 128\.0 GiB, more than this machine's"):
        nb.Sequential([nb.Dense(1, 2**33, bias=False)], dtype="float64")


@pytest.mark.skipif(_overcommit_always() or _physical_memory() >= 400e9,
                    reason="the kernel might grant the 400 GB buffer and kill the process while filling it")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's operator new reports an impossible allocation fatally instead of "
                           "throwing std::bad_alloc")
def test_a_batch_too_large_to_buffer_raises_memory_error_and_the_network_still_works():
    """Regression: the engine used to mark the failed batch size as reserved, so the next call
    wrote past the end of buffers that were never allocated."""
    net = nb.Sequential([nb.Dense(3, 100_000), nb.Dense(100_000, 1)], seed=0)
    X = np.ones((4, 3), np.float32)
    before = net.forward(X)
    with pytest.raises(MemoryError, match="X: the buffers for a batch of 1000000 rows"):
        net.forward(np.zeros((1_000_000, 3), np.float32))  # 4e11 bytes of activations
    np.testing.assert_array_equal(net.forward(X), before)
    np.testing.assert_array_equal(net.predict(X, batch_size=10**12), before)


# ---------------------------------------------------------------------- divergence
def _net(activation):
    return nb.Sequential([nb.Dense(4, 8), activation(), nb.Dense(8, 2)], seed=0)


def _diverge(net, opt, spike=None, steps=60):
    """train_step until it raises (midway, row 0 of X is set to `spike`); returns (weights before
    the failing step, weights after it)."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((32, 4)).astype(np.float32), rng.standard_normal((32, 2)).astype(np.float32)
    Xs = X.copy()
    if spike is not None:
        Xs[0] = spike
    for i in range(steps):
        before = [p.value.copy() for p in net.parameters()]
        try:
            net.train_step(Xs if i == steps // 2 else X, Y, loss="mse", optimizer=opt)
        except FloatingPointError as e:
            assert "train_step" in str(e)
            return before, [p.value for p in net.parameters()]
    raise AssertionError(f"no FloatingPointError in {steps} steps")


# With Tanh the output saturates and stays finite while the hidden gradients overflow: the
# engine's gradient check catches what the loss check cannot. ReLU passes the overflow on to the loss.
HUGE_LR = [
    pytest.param(nb.ReLU, "SGD", 1e30, id="ReLU-SGD-lr-1e30"),
    pytest.param(nb.ReLU, "Adam", 1e30, id="ReLU-Adam-lr-1e30"),
    pytest.param(nb.Tanh, "SGD", 1e30, id="Tanh-SGD-lr-1e30"),
    pytest.param(nb.Tanh, "SGD", 1e3, id="Tanh-SGD-lr-1e3"),
    pytest.param(nb.Tanh, "Adam", 1e30, id="Tanh-Adam-lr-1e30"),
]


@pytest.mark.parametrize("activation, kind, lr", HUGE_LR)
def test_a_huge_learning_rate_makes_train_step_raise_and_keep_the_last_finite_weights(activation, kind, lr):
    net = _net(activation)
    before, after = _diverge(net, getattr(nb.optim, kind)(net, lr=lr))
    assert all(np.isfinite(w).all() for w in after), "the weights left in place are not finite"
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_an_input_that_overflows_the_output_makes_train_step_raise_and_change_nothing():
    net = _net(nb.ReLU)
    before, after = _diverge(net, nb.optim.SGD(net, lr=0.01), spike=3e38)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation, kind, lr", HUGE_LR)
def test_a_huge_learning_rate_makes_fit_raise_and_keep_finite_weights(activation, kind, lr):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((256, 4)).astype(np.float32), rng.standard_normal((256, 2)).astype(np.float32)
    net = _net(activation)
    with pytest.raises(FloatingPointError, match="fit: the loss or its gradient became NaN or infinite") as e:
        net.fit(X, Y, loss="mse", optimizer=getattr(nb.optim, kind)(net, lr=lr), epochs=50, batch_size=32, verbose=0)
    assert len(e.value.history) < 50
    assert all(np.isfinite(p.value).all() for p in net.parameters())
