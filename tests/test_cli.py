"""python -m nativebp train / predict on small tables in a temporary directory (subprocesses)."""
import csv
import subprocess
import sys

import numpy as np
import pytest

import nativebp as nb


def _cli(*args, cwd, check=True):
    r = subprocess.run([sys.executable, "-m", "nativebp", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture
def blobs(tmp_path):
    """Three well separated classes with text labels; raw features far from unit scale."""
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    y = rng.integers(0, 3, 240)
    X = (centers[y] + rng.normal(size=(240, 2))) * 100 + 1000
    labels = np.array(["ant", "bee", "cat"])[y]
    _write_csv(tmp_path / "train.csv", ["x1", "label", "x2"], [[a, lab, b] for (a, b), lab in zip(X, labels)])
    return X, labels


def test_train_then_predict_classifies_a_csv_with_text_labels(tmp_path, blobs):
    X, labels = blobs
    r = _cli("train", "train.csv", "--target", "label", "--hidden", "16,8", "--epochs", "30", "--out", "m.nbp",
             cwd=tmp_path)
    assert "240 samples, 2 features, target 'label' (3 classes)" in r.stdout and "model saved to m.nbp" in r.stdout
    _cli("predict", "m.nbp", "train.csv", "--out", "preds.csv", "--proba", cwd=tmp_path)
    header, rows = _read_csv(tmp_path / "preds.csv")
    assert header == ["prediction", "p_ant", "p_bee", "p_cat"] and len(rows) == 240
    assert np.mean([row[0] == lab for row, lab in zip(rows, labels)]) > 0.95
    np.testing.assert_allclose([sum(map(float, row[1:])) for row in rows], 1, atol=1e-4)
    # the saved model is self-contained: raw features in, same logits as the CLI used
    net = nb.load(tmp_path / "m.nbp")
    meta = nb.io.read_header(tmp_path / "m.nbp")["meta"]["cli"]
    assert meta["features"] == ["x1", "x2"] and meta["classes"] == ["ant", "bee", "cat"]
    assert [meta["classes"][k] for k in net.predict(X).argmax(axis=1)] == [row[0] for row in rows]


def test_regression_on_raw_scale_targets_and_npz_input(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = 5000 + 800 * X[:, 0] - 300 * X[:, 1] ** 2
    np.savez(tmp_path / "d.npz", X=X, price=y)
    _cli("train", "d.npz", "--target", "price", "--task", "regress", "--hidden", "32", "--epochs", "60", "--lr",
         "3e-3", "--quiet", "--out", "r.nbp", cwd=tmp_path)
    out = _cli("predict", "r.nbp", "d.npz", cwd=tmp_path).stdout.splitlines()
    pred = np.array(out[1:], dtype=float)
    assert out[0] == "prediction" and 1 - np.mean((pred - y) ** 2) / np.var(y) > 0.9


def test_npy_target_column_is_dropped_again_at_prediction(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2))
    np.save(tmp_path / "d.npy", np.c_[X[:, 0] > 0, X])  # target first
    _cli("train", "d.npy", "--target", "0", "--epochs", "5", "--quiet", "--out", "c.nbp", cwd=tmp_path)
    out = _cli("predict", "c.nbp", "d.npy", cwd=tmp_path).stdout.splitlines()
    assert len(out) == 101 and set(out[1:]) <= {"0", "1"}


def test_help_documents_every_option():
    for command, options in [("train", ["--target", "--task", "--hidden", "--activation", "--dropout", "--epochs",
                                        "--batch-size", "--optimizer", "--lr", "--weight-decay", "--validation-split",
                                        "--dtype", "--seed", "--threads", "--delimiter", "--out", "--plot", "--quiet"]),
                             ("predict", ["--out", "--proba", "--delimiter"])]:
        text = _cli(command, "--help", cwd=".").stdout
        assert all(o in text for o in options), command
    assert all(c in _cli("--help", cwd=".").stdout for c in ("demo", "train", "predict"))


@pytest.mark.parametrize("args, message", [
    (["train", "train.csv", "--target", "nope"], "--target: train.csv has no column 'nope'; columns: x1, label, x2"),
    (["train", "train.csv"], "--target is required for CSV data"),
    (["train", "bad.csv", "--target", "label"], "column 'x1', data row 2: 'n/a' is not a number"),
    (["train", "train.csv", "--target", "label", "--hidden", "8,x"], "expected comma-separated layer widths"),
    (["predict", "missing.nbp", "train.csv"], "missing.nbp: cannot load the model"),
])
def test_bad_input_exits_with_status_2_and_a_clear_message(tmp_path, blobs, args, message):
    _write_csv(tmp_path / "bad.csv", ["x1", "label"], [[1, "a"], ["n/a", "b"]])
    r = _cli(*args, cwd=tmp_path, check=False)
    assert r.returncode == 2 and message in r.stderr
