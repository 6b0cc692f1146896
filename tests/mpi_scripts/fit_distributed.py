"""Run under `mpiexec -n 2`: ``net.fit(..., distributed=True)`` (a user's script unchanged but
for that flag) vs ``DataParallel(net).fit`` with the same arguments vs one process stepping on
the same global batches, in float64, with BatchNorm, Adam, a validation split and a short last
batch split unevenly (79 training rows: 4 global batches of 16 and one of 15, split 8 + 7).

Writes JSON to argv[1] (rank 0): the relative differences of the weights and BatchNorm state,
whether the Histories are equal, and the ranks' spread.
"""
import json
import sys

import numpy as np
from mpi4py import MPI

import nativebp as nb
from nativebp.distributed import DataParallel, epoch_order

comm = MPI.COMM_WORLD
R, B, EPOCHS, SEED = comm.Get_size(), 8, 3, 5
rng = np.random.default_rng(4)
X, y = rng.standard_normal((99, 6)) * 2 + 0.5, rng.integers(0, 4, 99)
VAL = 0.2  # the last 20 rows validate; 79 train: 4 global batches of 16 and one of 15 (8 + 7)


def make():
    # no bias before BatchNorm: its gradient is 0 in exact arithmetic, so Adam would amplify rounding
    net = nb.Sequential([nb.Dense(6, 16, bias=False), nb.BatchNorm1d(16), nb.ReLU(), nb.Dense(16, 4)], dtype="float64",
                        seed=0)
    return net, nb.optim.Adam(net, lr=0.01)


args = dict(loss="cross_entropy", epochs=EPOCHS, batch_size=B, seed=SEED, validation_split=VAL,
            metrics=["accuracy"], verbose=0)
flag, o1 = make()
h_flag = flag.fit(X, y, optimizer=o1, distributed=True, **args)
dp, o2 = make()
h_dp = DataParallel(dp).fit(X, y, optimizer=o2, **args)
p = flag._engine.param_array()
spread = float(np.abs(np.array(comm.allgather(p.copy())) - p).max())
if comm.rank == 0:
    one, o3 = make()
    n_train = len(X) - int(round(VAL * len(X)))
    for epoch in range(EPOCHS):
        order = epoch_order(n_train, SEED, epoch)
        for i in range(0, n_train, R * B):
            rows = order[i:i + R * B]
            one.train_step(X[rows], y[rows], loss="cross_entropy", optimizer=o3)
    q = one._engine.param_array()

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())
    result = {"flag_vs_dataparallel": rel(p, dp._engine.param_array()),
              "flag_vs_one_process": rel(p, q),
              "state_vs_one_process": rel(flag._engine.state_array(), one._engine.state_array()),
              "same_history": h_flag.history == h_dp.history, "history": h_flag.history,
              "n_train": n_train, "spread": spread}
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
