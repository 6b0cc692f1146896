"""nb.plot_history: one panel per quantity with training and validation curves, saved as PNG,
without pyplot or a global backend change."""
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

import nativebp as nb  # noqa: E402

HISTORY = {"loss": [1.0, 0.6, 0.4, 0.3], "val_loss": [1.1, 0.8, 0.7, 0.65], "accuracy": [0.5, 0.7, 0.8, 0.85],
           "val_accuracy": [0.45, 0.6, 0.7, 0.72], "lr": [1e-3] * 4}


class _History:  # what net.fit returns, as far as plotting cares
    history = HISTORY


def _lines(ax):
    return {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}


@pytest.mark.parametrize("history", [HISTORY, _History()], ids=["dict", "history_object"])
def test_panels_hold_training_and_validation_curves(history, tmp_path):
    fig = nb.plot_history(history, path=tmp_path / "h.png", title="run")
    loss, acc = fig.axes  # a constant learning rate gets no panel
    assert loss.get_title() == "loss" and acc.get_title() == "accuracy"
    assert _lines(acc) == {"training": HISTORY["accuracy"], "validation": HISTORY["val_accuracy"]}
    image = matplotlib.image.imread(tmp_path / "h.png")
    assert image.shape[0] > 200 and image.shape[1] > 600 and image[..., :3].std() > 0.05  # not blank


def test_log_scale_for_a_loss_spanning_decades_and_changing_lr_panel():
    fig = nb.plot_history({"loss": list(np.logspace(1, -3, 30)), "lr": list(np.linspace(1e-2, 1e-4, 30))})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "learning rate"]
    assert fig.axes[0].get_yscale() == "log"


def test_fitted_mlp_estimator_is_plotted_from_its_curves():
    pytest.importorskip("sklearn")
    from nativebp.sklearn import MLPClassifier
    X, y, _, _ = nb.datasets.load_digits_split()
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=15, random_state=0)
    with pytest.warns(Warning):  # 15 epochs: ConvergenceWarning
        clf.fit(X, y)
    loss, score = nb.plot_history(clf).axes
    assert _lines(loss)["training"] == clf.loss_curve_ and score.get_title() == "validation score"


def test_plotting_leaves_pyplot_and_the_backend_alone():
    # (matplotlib.get_backend() itself imports pyplot, so only the import is checked)
    code = ("import sys, nativebp as nb; nb.plot_history({'loss': [2, 1]}); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("history, error, match", [
    ([1, 2], TypeError, "history: expected a History"),
    ({"loss": ["a"]}, TypeError, "history\\['loss'\\]: expected a list of numbers"),
    ({"loss": []}, ValueError, "no values to plot"),
])
def test_bad_histories_raise_clear_errors(history, error, match):
    with pytest.raises(error, match=match):
        nb.plot_history(history)


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="metrics: \\['f1'\\] not in the history"):
        nb.plot_history(HISTORY, metrics=["f1"])
