"""Command line: ``python -m nativebp {demo,train,predict}``; see ``python -m nativebp --help``.

``train`` reads a table (CSV with a header row, ``.npy`` or ``.npz``), trains an MLP on it and
saves a self-contained model: the feature standardisation (and, for regression, the target's)
is folded into the first and last Dense layers, so ``nb.load(path).predict(raw_X)`` needs no
preprocessing. ``predict`` applies a saved model to a table and writes a CSV.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

EPILOG_TRAIN = """data formats:
  CSV   a header row, then one row per sample; --target names the target column, every other
        column is a numeric feature (encode categories first)
  .npz  arrays: features in 'X', targets in the array --target names (default 'y')
  .npy  one 2-D numeric array; --target is the target column's index (default: the last)

examples:
  python -m nativebp train iris.csv --target species --hidden 32,16 --epochs 100 --out iris.nbp
  python -m nativebp train houses.csv --target price --task regress --lr 3e-3 --plot curves.png
"""


class CLIError(Exception):
    """A user error: printed as ``error: ...`` with exit status 2."""


# ----------------------------------------------------------------------------------------- data
def _read_csv(path, delimiter):
    """(header, columns as lists of stripped strings)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not header:
        raise CLIError(f"{path}: empty file (expected a header row, then one row per sample)")
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise CLIError(f"{path}: line {i + 2} has {len(r)} fields, the header has {len(header)}")
    if not rows:
        raise CLIError(f"{path}: no data rows after the header")
    return [h.strip() for h in header], [[c.strip() for c in col] for col in zip(*rows)]


def _numbers(path, name, values):
    import numpy as np
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                raise CLIError(f"{path}: column {name!r}, data row {i + 1}: {v!r} is not a number (features must be "
                               f"numeric; encode categories first)") from None
        raise


def _load_table(path, target, delimiter, features=None):
    """(X float64 (n, d), y (raw values or None), feature names, target name).

    ``features``: for prediction, the names (CSV) the model was trained on; None takes every
    column but the target.
    """
    import numpy as np
    if not os.path.isfile(path):
        raise CLIError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = dict(z)
        if "X" not in arrays:
            raise CLIError(f"{path}: expected the features in an array named 'X', found {sorted(arrays)}")
        X = np.asarray(arrays["X"], dtype=np.float64)
        key = target or "y"
        if features is None and key not in arrays:
            raise CLIError(f"--target: {path} has no array {key!r}; it has {sorted(arrays)}")
        y = arrays.get(key) if features is None else None
        names = [f"x{i}" for i in range(X.shape[1] if X.ndim == 2 else 0)]
    elif ext == ".npy":
        a = np.load(path, allow_pickle=False)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise CLIError(f"{path}: expected a 2-D numeric array, got shape {a.shape}, dtype {a.dtype}")
        if features is not None and len(features) == a.shape[1]:
            return a.astype(np.float64), None, features, None
        try:
            col = int(target) if target is not None else a.shape[1] - 1
            col = range(a.shape[1])[col]
        except (ValueError, IndexError):
            raise CLIError(f"--target: for a .npy file, a column index in [-{a.shape[1]}, {a.shape[1]}), "
                           f"got {target!r}") from None
        X, y = np.delete(a, col, axis=1).astype(np.float64), a[:, col]
        names, key = [f"x{i}" for i in range(X.shape[1])], str(col)
    elif ext in (".csv", ".txt", ".tsv"):
        header, columns = _read_csv(path, "\t" if ext == ".tsv" and delimiter == "," else delimiter)
        if len(set(header)) != len(header):
            raise CLIError(f"{path}: duplicate column names in the header")
        by_name = dict(zip(header, columns))
        if features is None:
            if target not in by_name:
                raise CLIError(f"--target: {path} has no column {target!r}; columns: {', '.join(header)}")
            names = [h for h in header if h != target]
            y = by_name[target]
        else:
            missing = [f for f in features if f not in by_name]
            if missing:
                raise CLIError(f"{path}: the model needs feature columns {missing}, which are missing")
            names, y = list(features), None
        X = np.column_stack([_numbers(path, n, by_name[n]) for n in names]) if names else np.empty((len(columns[0]), 0))
        key = target
    else:
        raise CLIError(f"{path}: unknown data format {ext!r}; expected .csv, .tsv, .npy or .npz")
    if X.ndim != 2 or X.shape[1] == 0 or len(X) == 0:
        raise CLIError(f"{path}: expected at least one sample and one feature, got features of shape {X.shape}")
    if not np.isfinite(X).all():
        raise CLIError(f"{path}: features contain NaN or infinity (fill or drop missing values first)")
    return X, y, names, key


def _targets(y, task):
    """(task, y as int64 class indices or float64 column, class labels or None)."""
    import numpy as np
    raw = np.asarray(y)
    try:
        values = raw.astype(np.float64)
    except ValueError:
        values = None
    if task == "auto":
        few = values is not None and np.all(values == np.round(values)) and len(np.unique(values)) <= 20
        task = "classify" if values is None or few else "regress"
    if task == "regress":
        if values is None:
            raise CLIError("--task regress: the target column is not numeric")
        if not np.isfinite(values).all():
            raise CLIError("target: contains NaN or infinity")
        return task, values.reshape(-1, 1), None
    if values is not None and np.all(values == np.round(values)):
        order = np.unique(values)  # numeric labels sort as numbers; printed without '.0'
        classes = [str(int(v)) for v in order]
        index = np.searchsorted(order, values)
    else:
        classes, index = np.unique(raw.astype(str), return_inverse=True)
        classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise CLIError(f"target: classification needs at least 2 classes, found {classes}")
    return task, index.astype(np.int64).reshape(-1), classes


# ----------------------------------------------------------------------------------------- train
def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths like 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {text!r}")
    return sizes


def _build(n_in, n_out, args):
    import nativebp as nb
    layers, width = [], n_in
    init = "he_uniform" if args.activation in ("relu", "leaky_relu", "elu", "gelu", "silu") else "xavier_uniform"
    for h in args.hidden:
        layers += [nb.Dense(width, h, init=init), args.activation]
        if args.dropout > 0:
            layers.append(nb.Dropout(args.dropout))
        width = h
    layers.append(nb.Dense(width, n_out))
    return nb.Sequential(layers, dtype=args.dtype, seed=args.seed)


def _fold_scaling(net, mean, std, y_mean=None, y_std=None):
    """Make the network take raw features (and, for regression, output raw targets):
    ((x - m) / s) W + b = x (W / s) + (b - (m / s) W);  (z s_y + m_y) = h (W s_y) + (b s_y + m_y)."""
    import numpy as np
    params = net.parameters()
    w, b = params[0].value, params[1].value
    w64 = w.astype(np.float64)
    b[...] = b - (mean / std) @ w64
    w[...] = w64 / std[:, None]
    if y_mean is not None:
        w, b = params[-2].value, params[-1].value
        b[...] = b * y_std + y_mean
        w[...] = w * y_std


def _train(args):
    import numpy as np
    import nativebp as nb
    if args.threads:
        nb.set_num_threads(args.threads)
    X, y, names, target = _load_table(args.data, args.target, args.delimiter)
    task, y, classes = _targets(y, args.task)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(X))  # the validation split takes the last rows: shuffle first
    X, y = X[order], y[order]
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    Xs = (X - mean) / std
    net = _build(X.shape[1], len(classes) if classes else 1, args)
    if task == "regress":
        y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
        ys, loss, metrics = (y - y_mean) / y_std, "mse", ["mae"]
    else:
        y_mean = y_std = None
        ys, loss, metrics = y, "cross_entropy", ["accuracy"]
    kinds = {"adam": nb.optim.Adam, "adamw": nb.optim.AdamW, "sgd": nb.optim.SGD, "rmsprop": nb.optim.RMSprop,
             "adagrad": nb.optim.Adagrad}
    extra = {"momentum": 0.9} if args.optimizer == "sgd" else {}
    opt = kinds[args.optimizer](net, lr=args.lr, weight_decay=args.weight_decay, **extra)
    out = sys.stdout
    if not args.quiet:
        what = f"{len(classes)} classes" if classes else "regression"
        print(f"{args.data}: {len(X)} samples, {X.shape[1]} features, target {target!r} ({what})", file=out)
        net.summary(print_fn=lambda s: print(s, file=out))
    hist = net.fit(Xs, ys, loss=loss, optimizer=opt, epochs=args.epochs, batch_size=args.batch_size,
                   validation_split=args.validation_split, metrics=metrics, verbose=0 if args.quiet else 2,
                   seed=args.seed)
    _fold_scaling(net, mean, std, y_mean, y_std)
    n_val = int(len(X) * args.validation_split)
    report = _scores(net, X, y, task, n_val)
    meta = {"cli": {"task": task, "target": target, "features": names, "classes": classes,
                    "data": os.path.basename(args.data), "scores": report}}
    net.save(args.out, meta=meta)
    if not args.quiet:
        print("final: " + ", ".join(f"{k} {v:.4g}" for k, v in report.items()), file=out)
        print(f"model saved to {args.out}", file=out)
    if args.plot:
        nb.plot_history(hist, path=args.plot, title=f"{os.path.basename(args.data)} -> {target}")
        if not args.quiet:
            print(f"curves saved to {args.plot}", file=out)
    return 0


def _scores(net, X, y, task, n_val):
    """Training (and validation) accuracy, or RMSE and MAE, on the raw scale."""
    import numpy as np
    parts = {"train": slice(0, len(X) - n_val)}
    if n_val:
        parts["val"] = slice(len(X) - n_val, len(X))
    out = {}
    for name, s in parts.items():
        Z = net.predict(X[s]).astype(np.float64)
        if task == "classify":
            out[f"{name}_accuracy"] = float(np.mean(Z.argmax(axis=1) == y[s]))
        else:
            out[f"{name}_rmse"] = float(np.sqrt(np.mean((Z - y[s]) ** 2)))
            out[f"{name}_mae"] = float(np.mean(np.abs(Z - y[s])))
    return out


# ----------------------------------------------------------------------------------------- predict
def _predict(args):
    import numpy as np
    import nativebp as nb
    try:
        header = nb.io.read_header(args.model)
        net = nb.load(args.model)
    except (OSError, ValueError) as e:
        raise CLIError(f"{args.model}: cannot load the model ({e})") from None
    cli = (header.get("meta") or {}).get("cli")
    features = cli["features"] if cli else [f"x{i}" for i in range(net.in_features)]
    if cli is None and os.path.splitext(args.data)[1].lower() in (".csv", ".tsv", ".txt"):
        names, _ = _read_csv(args.data, args.delimiter)
        features = names  # a model saved from Python: every column is a feature, in order
    target = cli["target"] if cli else None  # a .npy table may still hold the target column
    X, _, _, _ = _load_table(args.data, target, args.delimiter, features=features)
    if X.shape[1] != net.in_features:
        raise CLIError(f"{args.data}: {X.shape[1]} feature columns, the model expects {net.in_features}")
    Z = net.predict(X).astype(np.float64)
    loss = (header.get("training") or {}).get("loss")
    classes = cli["classes"] if cli else (list(map(str, range(net.out_features))) if loss == "cross_entropy" else None)
    if classes:
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        columns = ["prediction"] + ([f"p_{c}" for c in classes] if args.proba else [])
        rows = [[classes[k]] + ([f"{p:.6g}" for p in row] if args.proba else []) for k, row in zip(Z.argmax(1), P)]
    else:
        columns = ["prediction"] if net.out_features == 1 else [f"output_{i}" for i in range(net.out_features)]
        rows = [[f"{v:.8g}" for v in row] for row in Z]
    f = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    finally:
        if args.out:
            f.close()
    if args.out:
        print(f"{len(rows)} predictions written to {args.out}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------- parser
def _demo(args):
    from .demo import main as demo_main
    return demo_main(epochs=args.epochs, threads=args.threads, plot=args.plot)


def _positive_float(text):
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def _fraction(text):
    v = float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return v


def _count(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return v


def build_parser():
    """The argparse parser of ``python -m nativebp``."""
    p = argparse.ArgumentParser(prog="python -m nativebp", description="nativebp: MLPs trained in C++.")
    sub = p.add_subparsers(dest="command", metavar="command")
    d = sub.add_parser("demo", help="train an MLP on the bundled UCI digits and report accuracy, time and gradient check")
    d.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    d.add_argument("--threads", type=int, default=None, help="engine threads (default: all cores)")
    d.add_argument("--plot", default=None, metavar="PNG", help="save the loss/accuracy curves to this PNG (needs matplotlib)")
    d.set_defaults(func=_demo)

    from .layers import _BY_NAME
    t = sub.add_parser("train", help="train an MLP on a CSV/.npy/.npz table and save the model",
                       description="Train an MLP (classification or regression) on a table and save it. Features are "
                                   "standardised for training; the saved model takes raw features.",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("data", help="training data: .csv/.tsv (header row), .npy or .npz")
    t.add_argument("--target", default=None, help="target: CSV column name (required for CSV), .npz array name "
                                                  "(default 'y'), .npy column index (default -1)")
    t.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                   help="auto (default): classify when the target is text or has <= 20 distinct integers")
    t.add_argument("--hidden", type=_hidden, default=[64], metavar="W1,W2,...",
                   help="hidden layer widths (default 64)")
    t.add_argument("--activation", default="relu", choices=sorted(_BY_NAME), help="hidden activation (default relu)")
    t.add_argument("--dropout", type=_fraction, default=0.0, help="dropout after each hidden layer (default 0)")
    t.add_argument("--epochs", type=_count, default=20, help="training epochs (default 20)")
    t.add_argument("--batch-size", type=_count, default=32, help="mini-batch size (default 32)")
    t.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"), default="adam",
                   help="optimizer (default adam; sgd uses momentum 0.9)")
    t.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default 1e-3)")
    t.add_argument("--weight-decay", type=float, default=0.0, help="optimizer weight decay (default 0)")
    t.add_argument("--validation-split", type=_fraction, default=0.1,
                   help="fraction of the (shuffled) rows held out for validation (default 0.1)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="precision (default float32)")
    t.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and dropout (default 0)")
    t.add_argument("--threads", type=_count, default=None, help="engine threads (default: all cores)")
    t.add_argument("--delimiter", default=",", help="CSV field delimiter (default ','; tab for .tsv)")
    t.add_argument("--out", default="model.nbp", help="where to save the model (default model.nbp)")
    t.add_argument("--plot", default=None, metavar="PNG", help="also save the training curves (needs matplotlib)")
    t.add_argument("--quiet", action="store_true", help="print nothing but errors")
    t.set_defaults(func=_train)

    r = sub.add_parser("predict", help="apply a saved model to a table and write predictions as CSV",
                       description="Predict with a model saved by 'train' (or by net.save). CSV input needs the "
                                   "feature columns the model was trained on (others, the target included, are "
                                   "ignored); .npy/.npz input needs the features in the same order.")
    r.add_argument("model", help="a saved model (.nbp)")
    r.add_argument("data", help="data to predict: .csv/.tsv (header row), .npy or .npz (array 'X')")
    r.add_argument("--out", default=None, help="output CSV (default: standard output)")
    r.add_argument("--proba", action="store_true", help="classification: add one probability column per class")
    r.add_argument("--delimiter", default=",", help="CSV field delimiter (default ',')")
    r.set_defaults(func=_predict)
    return p


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command == "train" and args.target is None and os.path.splitext(args.data)[1].lower() in (
            ".csv", ".tsv", ".txt"):
        parser.error("train: --target is required for CSV data (the target column's name)")
    try:
        return args.func(args) or 0
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: quietly stop
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
