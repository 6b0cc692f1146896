"""nativebp.sklearn: scikit-learn's own estimator checks, and the same training trajectory as
sklearn.neural_network in float64 (same init, shuffles, batches, penalty, schedules, stopping)."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network as sknn  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nativebp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _expected_failures(est):
    """float32 only, each off by one float32 rounding (~1e-7 relative) where a check demands
    rtol=1e-7; in float64 every check passes."""
    if est.dtype == "float64":
        return {}
    failing = {}
    if isinstance(est, MLPRegressor):  # Eigen's 1-row (GEMV) product rounds unlike the batched GEMM
        failing["check_methods_subset_invariance"] = "float32 1-row predictions differ by ~1 ulp from batched ones"
    return failing


# max_iter=100 as scikit-learn's own test suite uses for its MLPs; the ConvergenceWarning that
# short runs emit is the documented behaviour, not a failure. Two checks are skipped by
# scikit-learn itself: check_array_api_input (needs SCIPY_ARRAY_API set before scipy is imported;
# the estimators take numpy input, array_api_support=False) and the decision_function format
# check (MLPClassifier has no decision_function, as scikit-learn's).
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0, dtype="float64"),
                          MLPRegressor(max_iter=100, random_state=0, dtype="float64"),
                          MLPClassifier(max_iter=100, random_state=0),
                          MLPRegressor(max_iter=100, random_state=0)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks_pass(estimator, check):
    check(estimator)


def _fit_both(cls_sk, cls_nb, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls_sk(**kw).fit(X, y), cls_nb(dtype="float64", **kw).fit(X, y)


def _assert_same_fit(a, b, tol):
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=tol, atol=tol)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(q, p, rtol=tol, atol=tol)
    assert (b.n_iter_, b.t_, b.n_layers_, b.n_outputs_, b.out_activation_) == \
        (a.n_iter_, a.t_, a.n_layers_, a.n_outputs_, a.out_activation_)


X3, y3 = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_classifier_trajectory_equals_sklearn_in_float64(learning_rate, nesterov):
    # batch 64 leaves a last batch of 44: its penalty alpha/44 must match too; tol=0.05 makes
    # 'adaptive' divide the rate during the run
    a, b = _fit_both(sknn.MLPClassifier, MLPClassifier, X3, y3, hidden_layer_sizes=(16, 8), solver="sgd",
                     learning_rate=learning_rate, nesterovs_momentum=nesterov, max_iter=25, batch_size=64,
                     alpha=1e-2, tol=0.05 if learning_rate == "adaptive" else 1e-4, random_state=1)
    _assert_same_fit(a, b, 1e-10)
    np.testing.assert_allclose(b.predict_proba(X3), a.predict_proba(X3), atol=1e-10)


@pytest.mark.parametrize("n_targets", [1, 3])
def test_sgd_regressor_trajectory_equals_sklearn_in_float64(n_targets):
    X, y = make_regression(200, 6, n_targets=n_targets, random_state=0)
    a, b = _fit_both(sknn.MLPRegressor, MLPRegressor, X, y / 100, hidden_layer_sizes=(16,), solver="sgd",
                     max_iter=15, batch_size=48, alpha=0.1, learning_rate_init=0.01, random_state=2)
    _assert_same_fit(a, b, 1e-10)
    assert b.predict(X).shape == y.shape


def test_adam_trajectory_matches_sklearn_up_to_its_epsilon_placement():
    # Adam's eps sits outside sqrt(v_hat) (PyTorch) instead of sqrt(v): differences ~1e-6
    a, b = _fit_both(sknn.MLPClassifier, MLPClassifier, X3, y3, hidden_layer_sizes=(16,), max_iter=20,
                     random_state=0, activation="tanh")
    _assert_same_fit(a, b, 1e-4)


def test_early_stopping_matches_sklearn_split_scores_and_restores_best_weights():
    y = (y3 == 1)  # binary: stratified split, as scikit-learn's
    a, b = _fit_both(sknn.MLPClassifier, MLPClassifier, X3, y, hidden_layer_sizes=(8,), max_iter=60,
                     early_stopping=True, n_iter_no_change=3, random_state=3, activation="logistic")
    np.testing.assert_allclose(b.validation_scores_, a.validation_scores_)
    assert b.best_validation_score_ == a.best_validation_score_ and b.best_loss_ is None
    _assert_same_fit(a, b, 1e-4)


def test_multilabel_indicator_targets_train_sigmoid_outputs():
    Y = np.c_[y3 == 0, y3 == 2, X3[:, 0] > 0].astype(int)
    a, b = _fit_both(sknn.MLPClassifier, MLPClassifier, X3, Y, hidden_layer_sizes=(16,), solver="sgd",
                     max_iter=10, random_state=0, learning_rate_init=0.05)
    assert b.out_activation_ == "logistic" and b.n_outputs_ == 3
    _assert_same_fit(a, b, 1e-10)
    assert b.predict(X3).shape == Y.shape and set(np.unique(b.predict(X3))) <= {0, 1}
    np.testing.assert_allclose(b.predict_proba(X3), a.predict_proba(X3), atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_string_labels_round_trip_through_predict_and_probabilities():
    y = np.array(["cat", "dog", "emu"])[y3]
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X3, y)
    assert list(clf.classes_) == ["cat", "dog", "emu"] and clf.predict(X3).dtype == y.dtype
    assert clf.score(X3, y) > 0.9
    proba = clf.predict_proba(X3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X3), np.log(proba))
    assert proba.dtype == np.float64 and clf.predict_proba(X3.astype(np.float32)).dtype == np.float32


def test_partial_fit_needs_classes_first_and_equals_sklearn_epochs():
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X3, y3)
    a = sknn.MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", random_state=0, learning_rate="invscaling")
    b = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", random_state=0, learning_rate="invscaling",
                      dtype="float64")
    for est in (a, b):
        est.partial_fit(X3[:150], y3[:150], classes=[0, 1, 2])
        est.partial_fit(X3[150:], y3[150:])
    _assert_same_fit(a, b, 1e-10)
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        b.partial_fit(X3, y3 + 5)


def test_pickled_estimator_predicts_the_same_and_resumes_partial_fit_identically():
    X, y = make_regression(120, 5, random_state=0)
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e-3, random_state=0)
    est.partial_fit(X, y / 100)
    copy = pickle.loads(pickle.dumps(est))
    assert "_net" not in est.__getstate__() and all(type(c) is np.ndarray for c in est.__getstate__()["coefs_"])
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    for e in (est, copy):  # the optimizer's momentum survives the pickle
        e.partial_fit(X, y / 100)
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    np.testing.assert_array_equal(copy.loss_curve_, est.loss_curve_)


def test_warm_start_continues_from_fitted_weights_and_appends_loss_curve():
    X, y = make_regression(100, 4, random_state=1)
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0, learning_rate_init=0.01)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(5\\)"):
        est.fit(X, y)
    first = [c.copy() for c in est.coefs_]
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert len(est.loss_curve_) == 10 and est.n_iter_ == 5 and est.t_ == 1000
    assert not np.allclose(first[0], est.coefs_[0])
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.set_params(hidden_layer_sizes=(3,)).fit(X, y)


def test_assigned_coefs_are_used_by_predict():
    X, y = make_regression(50, 3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    est.coefs_ = [np.zeros_like(c) for c in est.coefs_]
    np.testing.assert_allclose(est.predict(X), est.intercepts_[1][0], rtol=1e-6)


def test_pipeline_and_grid_search_choose_as_with_sklearn():
    scores = []
    for cls in (sknn.MLPClassifier, MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe = make_pipeline(StandardScaler(), cls(max_iter=100, learning_rate_init=0.01, random_state=0))
            grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)],
                                       "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3).fit(X3, y3)
        scores.append((grid.best_score_, grid.best_params_))
    assert grid.predict(X3).shape == y3.shape and scores[1][0] > 0.8
    assert abs(scores[1][0] - scores[0][0]) < 0.03 and scores[1][1] == scores[0][1]


def test_dataframe_input_records_feature_names():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X3, columns=[f"f{i}" for i in range(X3.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(df, y3)
    assert list(clf.feature_names_in_) == list(df.columns) and clf.n_features_in_ == 8


@pytest.mark.parametrize("params, match", [
    ({"solver": "lbfgs"}, "solver: 'lbfgs' is not supported.*'adam' or solver='sgd'"),
    ({"activation": "gelu"}, "activation: expected one of"),
    ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes: expected positive integers"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"dtype": "float16"}, "dtype: expected 'float32' or 'float64'"),
])
def test_bad_parameters_raise_errors_naming_them(params, match):
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X3, y3)


def test_poisson_loss_is_refused_clearly():
    with pytest.raises(ValueError, match="loss: only 'squared_error'"):
        MLPRegressor(loss="poisson").fit(X3, y3)
