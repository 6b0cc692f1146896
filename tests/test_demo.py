"""``python -m nativebp demo``: runs, reports accuracy, time and a passing gradient check."""
import io
import re
import subprocess
import sys

import numpy as np

import nativebp as nb
from nativebp import demo


def test_demo_reports_accuracy_time_and_a_passing_gradient_check():
    before = nb.get_num_threads()
    out = io.StringIO()
    try:
        code = demo.main(epochs=4, threads=1, out=out)
    finally:
        nb.set_num_threads(before)
    text = out.getvalue()
    assert code == 0, text
    acc = float(re.search(r"test accuracy: ([\d.]+)% \((\d+)/451\)", text).group(1))
    assert 80 < acc <= 100  # 4 epochs: a smoke test; the 97% target is checked in test_fit
    assert re.search(r"training time: [\d.]+ s \(4 epochs", text)
    assert re.search(r"max relative error [\d.e+-]+ in \S+ -> ok", text)
    assert text.count("  epoch ") == 4


def test_gradient_check_rows_keep_every_relu_input_away_from_the_kink():
    X = nb.datasets.load_digits_split()[0]
    net = demo.build_network(seed=0)
    rows = demo._away_from_kinks(net, X, 16)
    W = net.state_dict()
    h1 = X[rows].astype(float) @ W["0.weight"] + W["0.bias"]
    h2 = np.maximum(h1, 0) @ W["2.weight"] + W["2.bias"]
    assert len(rows) == 16 and min(np.abs(h1).min(), np.abs(h2).min()) >= 1e-3


def test_cli_runs_the_demo():
    r = subprocess.run([sys.executable, "-m", "nativebp", "demo", "--epochs", "2", "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "gradient check" in r.stdout
