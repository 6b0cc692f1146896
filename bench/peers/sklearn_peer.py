"""scikit-learn's MLPClassifier / MLPRegressor, one partial_fit call (= one epoch) at a time.

float32 input stays float32 inside sklearn's MLP. Where sklearn cannot express a config exactly,
runners() says so in its notes; none of the differences changes the work per sample.
"""
import warnings

import numpy as np
import sklearn
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_limits

from configs import batches

_limits = None


def setup(threads):
    global _limits
    _limits = threadpool_limits(threads)  # covers numpy's and scipy's OpenBLAS, and OpenMP
    return {"sklearn": sklearn.__version__, "numpy": np.__version__}


def build(cfg, seed):
    classify = cfg["loss"] == "cross_entropy"
    common = dict(hidden_layer_sizes=tuple(cfg["sizes"][1:-1]), activation=cfg["act"],
                  alpha=0.0, batch_size=cfg["batch"], shuffle=False, random_state=seed)
    if cfg.get("opt") == "sgd":
        common.update(solver="sgd", learning_rate="constant", learning_rate_init=cfg["lr"],
                      momentum=cfg["momentum"], nesterovs_momentum=False)
    else:
        common.update(solver="adam", learning_rate_init=cfg.get("lr", 1e-3))
    return (MLPClassifier if classify else MLPRegressor)(**common)


def runners(cfg, data, seed):
    X, y = data
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()  # sklearn's regressor wants a 1-D target for one output
    model = build(cfg, seed)
    warnings.simplefilter("ignore")  # e.g. batch_size clipped for inference-only fits
    notes = []
    classes = np.arange(cfg["sizes"][-1]) if cfg["loss"] == "cross_entropy" else None

    def epoch():
        if classes is None:
            model.partial_fit(X, y)
        else:
            model.partial_fit(X, y, classes=classes)

    if cfg["kind"] == "infer":
        epoch()  # one epoch to initialise the weights
        it = batches(X, None, cfg["batch"])
        notes.append("predict_proba: includes input validation and the softmax")
        return {"predict_proba": (lambda: model.predict_proba(next(it)[0]), cfg["batch"])}, notes

    epoch()
    assert model.coefs_[0].dtype == np.float32, "sklearn did not keep float32"
    notes.append("one partial_fit call = one epoch (input checks per call, loss every batch)")
    if cfg["loss"] == "mse":
        notes.append("squared_error is 0.5 x mean over samples: gradient differs by a constant")
    if cfg.get("opt") == "adam":
        notes.append("Adam's eps is added before the bias correction (tiny numerical difference)")
    units = 1 if cfg["unit"] == "steps/s" else X.shape[0]
    return {"partial_fit": (epoch, units)}, notes
