"""Run under `mpiexec -n 2`: DataParallel training vs one process, in float64.

Writes JSON to argv[1] (rank 0): for each case the relative error of the weights (and BatchNorm
running statistics) against one process stepping on the same global batches (net.train_step),
and the largest difference between the ranks' weights. BatchNorm is synced: every rank
normalises with the global batch's statistics.
"""
import json
import sys

import numpy as np
from mpi4py import MPI

import nativebp as nb
from nativebp.distributed import DataParallel, data_parallel, epoch_order, shard_bounds

comm = MPI.COMM_WORLD
R = comm.Get_size()
B, EPOCHS, SEED = 8, 2, 3


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def data(n, d_in, classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d_in)) * 2 + 0.5
    return X, rng.integers(0, classes, n)


def batches(n, epoch):
    order = epoch_order(n, SEED, epoch)
    return [order[i:i + R * B] for i in range(0, n, R * B)]


def make(layers, opt):
    net = nb.Sequential(layers(), dtype="float64", seed=0)
    return net, opt(net)


def distributed(layers, opt, X, y, **step):
    net, o = make(layers, opt)
    DataParallel(net).fit(X, y, loss="cross_entropy", optimizer=o, epochs=EPOCHS, batch_size=B, seed=SEED, verbose=0,
                          **step)
    p, s = net._engine.param_array(), net._engine.state_array()
    spread = float(np.abs(np.array(comm.allgather(p.copy())) - p).max())
    return p, s, spread


def single(layers, opt, X, y, **step):
    """One process, global batches of R*B rows in the same order."""
    net, o = make(layers, opt)
    for epoch in range(EPOCHS):
        for rows in batches(len(X), epoch):
            net.train_step(X[rows], y[rows], loss="cross_entropy", optimizer=o, **step)
    return net._engine.param_array(), net._engine.state_array()


sgd = lambda net: nb.optim.SGD(net, lr=0.05, momentum=0.9)
adam = lambda net: nb.optim.Adam(net, lr=0.01)
plain = lambda: [nb.Dense(6, 16), nb.Tanh(), nb.Dense(16, 16), nb.ReLU(), nb.Dense(16, 4)]
with_bn = lambda: [nb.BatchNorm1d(6), nb.Dense(6, 16), nb.ReLU(), nb.BatchNorm1d(16, momentum=0.3),
                   nb.Dense(16, 4)]

results = {}
# 99 rows: 6 global batches of 16 and a last one of 3 rows, split 2 + 1 (unequal shards)
X, y = data(99, 6, 4, 1)
penalties = dict(l1=1e-3, l2=1e-2, clip_norm=0.5)  # applied to the summed gradient, as in one process
for name, opt, step in (("sgd", sgd, {}), ("adam", adam, {}), ("sgd_penalties_clip", sgd, penalties)):
    p, _, spread = distributed(plain, opt, X, y, **step)
    if comm.rank == 0:
        q, _ = single(plain, opt, X, y, **step)
        results[name] = {"weights": rel(p, q), "spread": spread}
# BatchNorm synced over the ranks: the same as one process on the global batch, running
# statistics included. 2 ranks: the last batch of 3 rows is split 2 + 1 (above); 3 ranks: one of
# 2 rows is split 1 + 1 + 0, so a rank with no rows takes part in the BatchNorm sums
if R != 2:
    X, y = data(4 * R * B + 2, 6, 4, 1)
for name, opt in (("sgd_bn", sgd), ("adam_bn", adam)):
    p, s, spread = distributed(with_bn, opt, X, y)
    if comm.rank == 0:
        q, t = single(with_bn, opt, X, y)
        results[name] = {"weights": rel(p, q), "state": rel(s, t), "spread": spread}
# DataParallel.train_step on shards the caller cuts unequally (5 + 11 rows; 3 ranks: 5 + 6 + 5;
# the first step leaves the last rank empty, on its very first batch), BatchNorm synced: the same
# steps and losses as one process on the whole batch
net, o = make(with_bn, adam)
dp = DataParallel(net)
ref, o_ref = make(with_bn, adam)
losses = []
for step in range(5):
    cuts = [0] + [5 + 6 * i for i in range(R - 1 - (step == 0))] + [16] * (1 + (step == 0))
    rows = np.random.default_rng([7, step]).choice(len(X), 16, replace=False)
    mine = rows[cuts[comm.rank]:cuts[comm.rank + 1]]
    value = dp.train_step(X[mine], y[mine], loss="cross_entropy", optimizer=o)
    losses.append(abs(value - ref.train_step(X[rows], y[rows], loss="cross_entropy", optimizer=o_ref)) / value)
if comm.rank == 0:
    results["train_step_bn"] = {"weights": rel(net._engine.param_array(), ref._engine.param_array()),
                                "state": rel(net._engine.state_array(), ref._engine.state_array()),
                                "loss": max(losses)}
# resuming: fit(2 epochs) + fit(2 more, initial_epoch=2) continues the run, Dropout streams included
X, y = data(99, 6, 4, 3)
dropout = lambda: [nb.Dense(6, 16), nb.ReLU(), nb.Dropout(0.3), nb.Dense(16, 4)]
runs = []
for parts in ([4], [2, 2]):
    net, o = make(dropout, adam)
    done = 0
    for e in parts:
        h = data_parallel(net).fit(X, y, loss="cross_entropy", optimizer=o, epochs=e, initial_epoch=done,
                                   batch_size=B, validation_split=0.2, verbose=0)
        done += e
    runs.append((net._engine.param_array().copy(), h.history["val_loss"][-1]))
if comm.rank == 0:
    results["resume"] = {"weights": rel(runs[1][0], runs[0][0]), "val_loss": [runs[0][1], runs[1][1]]}
if comm.rank == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))
