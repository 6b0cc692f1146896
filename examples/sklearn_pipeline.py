"""A scikit-learn pipeline where one import changes: nativebp's MLPClassifier instead of
sklearn.neural_network's. Same parameters, same fitted attributes, same grid search.

    python examples/sklearn_pipeline.py       (needs scikit-learn: pip install 'nativebp[sklearn]')
"""
import time
import warnings

from sklearn import neural_network
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nativebp.sklearn import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
params = dict(hidden_layer_sizes=(128, 64), max_iter=100, random_state=0)

warnings.simplefilter("ignore", ConvergenceWarning)  # 100 epochs: sklearn warns when it stops there
for name, cls in [("sklearn.neural_network", neural_network.MLPClassifier), ("nativebp.sklearn", MLPClassifier)]:
    pipe = make_pipeline(StandardScaler(), cls(**params))
    start = time.perf_counter()
    pipe.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    mlp = pipe[-1]
    print(f"{name:24s} fit {seconds:5.2f} s, {mlp.n_iter_} epochs, final loss {mlp.loss_:.4f}, "
          f"test accuracy {pipe.score(X_test, y_test):.3f}")

# the same grid search code works unchanged
grid = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0)),
                    {"mlpclassifier__hidden_layer_sizes": [(32,), (128,)], "mlpclassifier__alpha": [1e-4, 1e-2]},
                    cv=3)
grid.fit(X_train, y_train)
print(f"grid search: best {grid.best_params_}, cv accuracy {grid.best_score_:.3f}, "
      f"test accuracy {grid.score(X_test, y_test):.3f}")
