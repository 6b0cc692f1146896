"""``nb.plot_history(history)``: training and validation curves (needs matplotlib).

>>> import nativebp as nb
>>> fig = nb.plot_history({"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6],
...                        "accuracy": [0.6, 0.8, 0.9], "val_accuracy": [0.5, 0.7, 0.75]},
...                       path="curves.png")               # doctest: +SKIP

Draws with matplotlib's object API on an Agg canvas: no pyplot, no window, and the process-wide
backend is left alone, so it works on servers and inside notebooks alike.
"""
from __future__ import annotations

import numbers

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as e:  # pragma: no cover - exercised only without matplotlib
    raise ImportError("plot_history needs matplotlib: pip install 'nativebp[plot]'") from e

__all__ = ["plot_history"]

_TITLES = {"loss": "loss", "accuracy": "accuracy", "mse": "mean squared error", "mae": "mean absolute error",
           "lr": "learning rate"}


def _curves(history):
    """{name: list of floats} from a History, a dict of lists or a fitted scikit-learn-style MLP."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    elif hasattr(history, "loss_curve_"):  # nativebp.sklearn / sklearn.neural_network estimators
        curves = {"loss": list(history.loss_curve_)}
        if getattr(history, "validation_scores_", None):
            curves["val_score"] = list(history.validation_scores_)
        return curves
    if not isinstance(history, dict):
        raise TypeError(f"history: expected a History (with .history), a dict of lists or a fitted MLP estimator, "
                        f"got {type(history).__name__}")
    curves = {}
    for key, values in history.items():
        values = list(values) if not isinstance(values, (str, bytes)) else None
        if values is None or not all(isinstance(v, numbers.Real) for v in values):
            raise TypeError(f"history[{key!r}]: expected a list of numbers, one per epoch")
        curves[str(key)] = [float(v) for v in values]
    if not any(curves.values()):
        raise ValueError("history: no values to plot (train for at least one epoch)")
    return curves


def plot_history(history, path=None, metrics=None, log_loss=None, title=None, dpi=100):
    """One panel per quantity (loss first, then each metric), training and ``val_`` curves together.

    - ``history``: what ``net.fit`` returns, its ``.history`` dict, any dict of per-epoch lists, or a
      fitted ``MLPClassifier``/``MLPRegressor`` (its ``loss_curve_`` and ``validation_scores_``).
    - ``path``: save a PNG (or any format matplotlib infers from the suffix) there.
    - ``metrics``: the quantities to draw (default all: ``loss``, ``accuracy``, ..., and ``lr`` when
      it changed during training).
    - ``log_loss``: log-scale loss axis (default: when the loss spans more than a factor of 20).

    Returns the matplotlib ``Figure``.
    """
    curves = _curves(history)
    bases = [k for k in curves if not k.startswith("val_")]
    bases += [k[4:] for k in curves if k.startswith("val_") and k[4:] not in bases]
    bases.sort(key=lambda k: (k != "loss", k == "lr"))
    if len(set(curves.get("lr", []))) <= 1 and "lr" in bases:  # a constant learning rate is not worth a panel
        bases.remove("lr")
    if metrics is not None:
        known = bases + (["lr"] if "lr" in curves and "lr" not in bases else [])
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f"metrics: {unknown} not in the history; it has {known}")
        bases = list(metrics)
    fig = Figure(figsize=(4.2 * len(bases), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, name in zip(fig.subplots(1, len(bases), squeeze=False)[0], bases):
        for key, label, style in ((name, "training", "-"), (f"val_{name}", "validation", "--")):
            values = curves.get(key)
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o" if len(values) < 15 else None, markersize=3, label=label)
        values = [v for k in (name, f"val_{name}") for v in curves.get(k, []) if v > 0]
        if name in ("loss", "lr") and values and (log_loss if log_loss is not None else max(values) > 20 * min(values)):
            ax.set_yscale("log")
        label = _TITLES.get(name, name.replace("_", " "))
        ax.set_title(label if curves.get(name) else f"validation {label}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if sum(bool(curves.get(k)) for k in (name, f"val_{name}")) > 1:
            ax.legend()
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
