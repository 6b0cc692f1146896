"""What the MPI benchmarks share: the `mnist` config trained by DataParallel at 1 thread per rank."""
import argparse
import os
import sys

import nativebp as nb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from configs import CONFIGS, make_data  # noqa: E402
from peers.nativebp_peer import build  # noqa: E402


def ab_arguments(doc):
    """--rounds and --epochs of an interleaved A/B run."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=2)
    return ap.parse_args()


def mnist(layers=None):
    """The mnist config's data, its network (or `layers`, float32, seed 0), Adam, and the fit
    arguments; the engine at 1 thread (each rank has its own core)."""
    nb.set_num_threads(1)
    cfg = CONFIGS["mnist"]
    X, y = make_data(cfg, 0)
    net = build(cfg["sizes"], cfg["act"], 0) if layers is None else nb.Sequential(layers, dtype="float32", seed=0)
    opt = nb.optim.Adam(net, lr=cfg["lr"])
    fit = dict(loss=cfg["loss"], optimizer=opt, batch_size=cfg["batch"], verbose=0)
    return cfg, X, y, net, opt, fit
