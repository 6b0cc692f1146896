"""scikit-learn estimators on the C++ engine: a drop-in for ``sklearn.neural_network``.

>>> from nativebp.sklearn import MLPClassifier        # instead of sklearn.neural_network
>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, y)
>>> clf.score(X, y) > 0.9
True

Same constructor parameters, defaults, fitted attributes and training semantics as scikit-learn's
``MLPClassifier`` / ``MLPRegressor`` for the stochastic solvers: Glorot-uniform weights and
biases drawn from ``random_state`` exactly as scikit-learn does, the same shuffling, mini-batches,
``alpha`` penalty ``0.5 * alpha * ||W||^2 / batch_size``, half squared error for regression,
``learning_rate`` schedules, ``tol`` / ``n_iter_no_change`` stopping on the training loss or, with
``early_stopping``, on the validation score, ``partial_fit`` and ``warm_start``. Each epoch runs
in the engine's fused trainer with the GIL released.

Differences, all small:
- ``dtype="float32"`` (extra parameter) is the precision of the computation (``"float64"``
  reproduces scikit-learn's trajectory to rounding). Inputs and outputs follow scikit-learn's
  dtype rules: outputs are float32 when X is float32, else float64.
- Adam's epsilon is added to ``sqrt(v_hat)`` (PyTorch) rather than ``sqrt(v)``: the two differ by a
  factor ``sqrt(1 - beta_2**t)`` on epsilon only.
- ``solver="lbfgs"``, ``loss="poisson"`` and ``sample_weight`` are not supported (clear errors);
  sparse X is densified.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _shuffle
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _core, optim
from ._checks import as_dtype
from .layers import Dense
from .network import Sequential

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_TRAINERS = {"float32": _core.Trainer32, "float64": _core.Trainer64}
_CHUNK = 256  # batches per engine call: Ctrl-C is honoured between calls


def _store_params(est, args):
    for k, v in args.items():
        if k not in ("self", "__class__"):
            setattr(est, k, v)


def _number(name, value, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    kinds = (numbers.Integral,) if integer else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if value != value or (lo is not None and (value <= lo if lo_open else value < lo)) or \
            (hi is not None and (value >= hi if hi_open else value > hi)):
        lo_s = "" if lo is None else ("(" if lo_open else "[") + str(lo)
        hi_s = "inf)" if hi is None else str(hi) + (")" if hi_open else "]")
        raise ValueError(f"{name}: expected a value in {lo_s}, {hi_s}, got {value!r}")


def _choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")


def _boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


class _BaseMLP(BaseEstimator):
    """Shared fit/predict machinery; use MLPClassifier or MLPRegressor."""

    # ------------------------------------------------------------------ parameters
    def _validate_params(self):
        sizes = list(self.hidden_layer_sizes) if np.iterable(self.hidden_layer_sizes) else [self.hidden_layer_sizes]
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes: expected positive integers, got {self.hidden_layer_sizes!r}")
        _choice("activation", self.activation, tuple(_ACTIVATIONS))
        if self.solver == "lbfgs":
            raise ValueError("solver: 'lbfgs' is not supported by nativebp (the engine trains by mini-batch "
                             "backpropagation); use solver='adam' or solver='sgd'")
        _choice("solver", self.solver, ("adam", "sgd"))
        _choice("learning_rate", self.learning_rate, ("constant", "invscaling", "adaptive"))
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _number("batch_size", self.batch_size, lo=1, integer=True)
        _number("alpha", self.alpha, lo=0)
        _number("learning_rate_init", self.learning_rate_init, lo=0, lo_open=True)
        _number("power_t", self.power_t, lo=0)
        _number("max_iter", self.max_iter, lo=1, integer=True)
        _number("tol", self.tol, lo=0)
        _number("momentum", self.momentum, lo=0, hi=1)
        _number("validation_fraction", self.validation_fraction, lo=0, hi=1, hi_open=True)
        _number("beta_1", self.beta_1, lo=0, hi=1, hi_open=True)
        _number("beta_2", self.beta_2, lo=0, hi=1, hi_open=True)
        _number("epsilon", self.epsilon, lo=0, lo_open=True)
        if self.n_iter_no_change != np.inf:
            _number("n_iter_no_change", self.n_iter_no_change, lo=1, integer=True)
        _number("max_fun", self.max_fun, lo=1, integer=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _boolean(name, getattr(self, name))
        check_random_state(self.random_state)
        as_dtype(self.dtype)
        return sizes

    # ------------------------------------------------------------------ network
    def _units_ok(self, units):
        return [c.shape for c in self.coefs_] == [(a, b) for a, b in zip(units[:-1], units[1:])]

    def _build_network(self, coefs, intercepts):
        """A Sequential holding `coefs`/`intercepts`; coefs_/intercepts_ become views of it."""
        layers, last = [], len(coefs) - 1
        for i, w in enumerate(coefs):
            layers.append(Dense(w.shape[0], w.shape[1], init="zeros"))
            if i < last:
                layers.append(_ACTIVATIONS[self.activation])
        net = Sequential(layers, dtype=as_dtype(self.dtype), seed=0)
        params = net.parameters()
        for p, v in zip(params, [a for pair in zip(coefs, intercepts) for a in pair]):
            p.value[...] = v
        self._net = net
        self._net_key = (self.activation, net.dtype)
        self.coefs_ = [p.value for p in params[0::2]]
        self.intercepts_ = [p.value for p in params[1::2]]

    def _network(self):
        """The engine network, rebuilt if dtype/activation changed; coefs_ the user assigned are copied in."""
        net = getattr(self, "_net", None)
        if net is None or self._net_key != (self.activation, as_dtype(self.dtype)):
            self._build_network([np.asarray(c) for c in self.coefs_], [np.asarray(b) for b in self.intercepts_])
            self._optimizer = None
            return self._net
        params = net.parameters()
        for p, v in zip(params, [a for pair in zip(self.coefs_, self.intercepts_) for a in pair]):
            if v is not p.value:
                if np.shape(v) != p.shape:
                    raise ValueError(f"coefs_/intercepts_: expected shape {p.shape} for {p.name}, got {np.shape(v)}")
                p.value[...] = v
        return net

    def _initialize(self, units):
        self.n_iter_, self.t_ = 0, 0
        self.n_layers_ = len(units)
        self.out_activation_ = self._out_activation()
        # Glorot-uniform with factor 6 (2 for logistic) for weights and biases, drawn in scikit-learn's order
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(self._random_state.uniform(-bound, bound, fan_out))
        self._build_network(coefs, intercepts)
        self._optimizer = None
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _make_optimizer(self):
        c = self._grad_scale()
        if self.solver == "sgd":
            return optim.SGD(self._net, lr=self.learning_rate_init / c, momentum=self.momentum,
                             nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        return optim.Adam(self._net, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                          eps=self.epsilon * c)

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, incremental):
        sizes = self._validate_params()
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, Y = self._validate_input(X, y, incremental, reset=first)
        self.n_outputs_ = self._n_outputs(Y)
        units = [X.shape[1]] + sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first:
            self._initialize(units)
        elif not self._units_ok(units):
            raise ValueError(f"hidden_layer_sizes: the fitted network has layer sizes "
                             f"{[c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]}, got {units}; "
                             f"warm_start and partial_fit need the same architecture")
        self._network()
        self._fit_stochastic(X, y, Y, incremental)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _dense(self, X):
        X = X.toarray() if sp.issparse(X) else X
        return np.ascontiguousarray(X, dtype=as_dtype(self.dtype))

    def _fit_stochastic(self, X, y, Y, incremental):
        if not incremental or getattr(self, "_optimizer", None) is None:
            self._optimizer = self._make_optimizer()
            self._lr = float(self.learning_rate_init)
            state = getattr(self, "_optimizer_state", None)
            if incremental and state is not None:  # resumed from a pickle
                self._optimizer.load_state_dict(state)
                self._lr = state["lr_sklearn"]
            self._optimizer_state = None
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping:
            # the same split as scikit-learn (stratified only for single-output classifiers)
            stratify = Y if self._is_clf and self.n_outputs_ == 1 else None
            tr, va = train_test_split(np.arange(len(X)), random_state=self._random_state,
                                      test_size=self.validation_fraction, stratify=stratify)
            if len(va) < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            X_val, y_val, X, Y = X[va], y[va], X[tr], Y[tr]
        n = len(X)
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch = int(np.clip(self.batch_size, 1, n))
        idx = np.arange(n)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    idx = _shuffle(idx, random_state=self._random_state)
                    loss = self._epoch(X[idx], Y[idx], batch)
                else:
                    loss = self._epoch(X, Y, batch)
                self.n_iter_ += 1
                self.loss_ = loss
                self.t_ += n
                self.loss_curve_.append(loss)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, loss))
                if self.early_stopping:
                    self._track_validation(X_val, y_val)
                else:
                    self._no_improvement_count = self._no_improvement_count + 1 \
                        if loss > self.best_loss_ - self.tol else 0
                    self.best_loss_ = min(self.best_loss_, loss)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._set_lr(self.learning_rate_init / (self.t_ + 1) ** self.power_t)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
                        what, self.tol, self.n_iter_no_change)
                    if self._stop(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:  # restore the best weights
            for dst, src in zip(self.coefs_ + self.intercepts_, self._best_coefs + self._best_intercepts):
                dst[...] = src

    def _epoch(self, X, Y, batch):
        """One pass over (X, Y) in order; returns the epoch loss on scikit-learn's scale.

        Our losses are c times scikit-learn's (see _grad_scale), so the penalty is l2 = c alpha / m
        and SGD's rate lr / c: the updates are scikit-learn's. Full batches run in the fused
        trainer; a smaller last batch runs as one step with its own penalty, as scikit-learn's.
        """
        net, opt, c = self._net, self._optimizer, self._grad_scale()
        n, loss_name, regress = len(X), self._loss_name(), not self._is_clf
        full = n - n % batch
        total = data = 0.0
        if full:
            tr = _TRAINERS[net.dtype](net._engine, opt._engine, X[:full], Y[:full], loss_name, 1.0, batch, False, 0,
                                      None, 0.0, c * self.alpha / batch, 0.0, 0.0, False, regress)
            tr.begin_epoch(None)
            while not tr.run(_CHUNK):
                pass
            t = tr.totals()
            self._check_finite(t["loss"], t["diverged"])
            total += t["loss"] * full
            data += t.get("mse", 0.0) * full
        if full < n:
            m, l2 = n - full, c * self.alpha / (n - full)
            penalty = 0.5 * l2 * sum(float(np.dot(w.ravel(), w.ravel())) for w in self.coefs_)
            value = net._engine.train_step(X[full:], Y[full:], loss_name, 1.0, opt._engine, None, 0.0, l2, 0.0, 0.0)
            self._check_finite(value, False)
            total += value * m
            data += (value - penalty) * m
        total, data = total / n, data / n
        # classification: loss = c * sklearn's; regression: data term is 2 x half-MSE, penalty c x sklearn's
        return total / c if not regress else 0.5 * data + (total - data) / c

    @staticmethod
    def _check_finite(value, diverged):
        if diverged or not np.isfinite(value):
            raise ValueError(f"Solver produced a non-finite loss ({value}). The input data may contain large values "
                             f"and need to be preprocessed, or learning_rate_init is too large.")

    def _set_lr(self, lr):
        old, self._lr = self._lr, float(lr)
        if self.solver != "sgd":
            self._optimizer.lr = self._lr
            return
        self._optimizer.lr = self._lr / self._grad_scale()
        if self.momentum > 0 and self._lr > 0:
            # scikit-learn's velocity holds -lr_old * buffer: rescale ours so -lr_new * buffer is unchanged
            self._optimizer._engine.state_array("momentum_buffer")[...] *= old / self._lr

    def _stop(self, msg):
        if self.solver == "adam" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self._lr / 5.0)
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _track_validation(self, X_val, y_val):
        y_pred = self._predict_validated(X_val)
        score = np.nan if (y_pred.dtype.kind == "f" and not np.isfinite(y_pred).all()) else \
            self._score_fn(y_val, y_pred)
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % score)
        self._no_improvement_count = self._no_improvement_count + 1 \
            if score < self.best_validation_score_ + self.tol else 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]

    # ------------------------------------------------------------------ prediction
    def _output(self, X, check_input=True):
        """Output-layer activations for X, in X's float dtype (float32 stays float32, else float64)."""
        check_is_fitted(self)
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)
        out = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        Z = self._network().forward(self._dense(X)).astype(out, copy=False)
        if self.out_activation_ == "softmax":
            Z = np.exp(Z - Z.max(axis=1, keepdims=True))
            Z /= Z.sum(axis=1, keepdims=True)
        elif self.out_activation_ == "logistic":
            Z = expit(Z)
        return Z

    def partial_fit(self, X, y):
        """One epoch over (X, y), keeping the network, optimizer state and learning rate between calls."""
        return self._fit(X, y, incremental=True)

    def fit(self, X, y):
        """Train on X (n_samples, n_features), dense or sparse, and targets y; returns self."""
        return self._fit(X, y, incremental=False)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        net, opt = state.pop("_net", None), state.pop("_optimizer", None)
        if net is not None:
            state["coefs_"] = [np.array(c) for c in self.coefs_]
            state["intercepts_"] = [np.array(b) for b in self.intercepts_]
        if opt is not None:
            state["_optimizer_state"] = dict(opt.state_dict(), lr_sklearn=self._lr)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in state:
            self._build_network(state["coefs_"], state["intercepts_"])
            self._optimizer = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified: the engine computes on dense rows
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    Parameters and fitted attributes are scikit-learn's (see its documentation and this module's
    docstring for the few differences); ``dtype`` ("float32" or "float64") is the engine's
    precision. Multiclass targets train a softmax output with cross-entropy, binary and
    multi-label (indicator matrix) targets sigmoid outputs with binary cross-entropy; class labels
    may be any hashable values (strings included).

    Fitted attributes: ``classes_``, ``coefs_``, ``intercepts_`` (numpy views of the engine's
    parameters), ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``n_iter_``, ``t_``, ``n_features_in_``, ``feature_names_in_``,
    ``n_layers_``, ``n_outputs_``, ``out_activation_``.
    """

    _is_clf = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype="float32"):
        _store_params(self, locals())

    _score_fn = staticmethod(accuracy_score)

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _loss_name(self):
        return "cross_entropy" if self.out_activation_ == "softmax" else "binary_cross_entropy"

    def _grad_scale(self):
        # our BCE is averaged over outputs too, scikit-learn's summed over them
        return 1.0 if self.out_activation_ == "softmax" else 1.0 / self.n_outputs_

    def _n_outputs(self, Y):
        return len(self.classes_) if self._label_binarizer.y_type_ == "multiclass" else Y.shape[1]

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        onehot = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            Y = np.ascontiguousarray(onehot.argmax(axis=1), dtype=np.int64)  # class indices for cross_entropy
        else:
            Y = np.ascontiguousarray(onehot, dtype=as_dtype(self.dtype))
        return self._dense(X), y, Y

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y). ``classes`` (all labels that will ever be seen) is required on the
        first call and must match ``classes_`` afterwards."""
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
            self._label_binarizer = LabelBinarizer().fit(y if type_of_target(y).startswith("multilabel")
                                                         else classes)
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                             f"was: {self.classes_!r}")
        return self._fit(X, y, incremental=True)

    def _predict_validated(self, X):
        p = self._proba_raw(self._output(X, check_input=False))
        return self._label_binarizer.inverse_transform(p)

    def _proba_raw(self, Z):
        return Z.ravel() if self.n_outputs_ == 1 else Z

    def predict(self, X):
        """Class labels for X (an indicator matrix for multi-label targets)."""
        p = self._proba_raw(self._output(X))  # checks fitted before touching _label_binarizer
        return self._label_binarizer.inverse_transform(p)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        p = self._proba_raw(self._output(X))
        return np.vstack([1 - p, p]).T if p.ndim == 1 else p

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        p = self.predict_proba(X)
        return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    Trains the half squared error (``loss="squared_error"``, the only loss supported) with an
    identity output; y may have several columns (multi-output). Parameters and fitted attributes
    are scikit-learn's (see the module docstring for the few differences); ``dtype`` ("float32"
    or "float64") is the engine's precision.
    """

    _is_clf = False
    _score_fn = staticmethod(r2_score)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype="float32"):
        _store_params(self, locals())

    def _validate_params(self):
        if self.loss != "squared_error":
            raise ValueError(f"loss: only 'squared_error' is supported by nativebp ('poisson' is not), "
                             f"got {self.loss!r}")
        return super()._validate_params()

    def _out_activation(self):
        return "identity"

    def _loss_name(self):
        return "mse"

    def _grad_scale(self):
        # our mse = mean (z-y)^2 over outputs, gradient 2/out x scikit-learn's (z-y) per sample
        return 2.0 / self.n_outputs_

    def _n_outputs(self, Y):
        return Y.shape[1]

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=as_dtype(self.dtype))
        return self._dense(X), y, Y

    def _predict_validated(self, X):
        Z = self._output(X, check_input=False)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        Z = self._output(X)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
