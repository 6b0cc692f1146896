"""Run under `mpiexec -n 2`: an end-to-end DataParallel.fit on the bundled digits, with Dropout,
BatchNorm, validation, a learning-rate schedule, a checkpoint per epoch in argv[1] (a folder),
and a callback on rank 1 alone that stops training after 4 of 6 epochs.

Rank 0 writes argv[1]/result.json: the History (as seen by each rank), the largest difference
between the ranks' weights and BatchNorm state, whether the ranks' Dropout masks differ, and the
final weights' relative difference from the last checkpoint loaded with nb.load.
"""
import json
import os
import sys

import numpy as np
from mpi4py import MPI

import nativebp as nb
from nativebp.distributed import DataParallel

comm = MPI.COMM_WORLD
out = sys.argv[1]
Xtr, ytr, Xte, yte = nb.datasets.load_digits_split()
net = nb.Sequential([nb.Dense(64, 64), nb.BatchNorm1d(64), nb.ReLU(), nb.Dropout(0.1), nb.Dense(64, 10)],
                    seed=comm.rank)  # different initial weights per rank: DataParallel must broadcast rank 0's
dp = DataParallel(net)
opt = nb.optim.Adam(net, lr=3e-3)
callbacks = [nb.callbacks.ModelCheckpoint(os.path.join(out, "ckpt-{epoch}.nbp")),
             nb.callbacks.StepLR(step_size=2, gamma=0.5),
             lambda epoch, logs: comm.rank == 1 and epoch == 3]  # one rank asks to stop after 4 epochs: all stop
hist = dp.fit(Xtr, ytr, loss="cross_entropy", optimizer=opt, epochs=6, batch_size=32, seed=1,
              validation_data=(Xte, yte), metrics=["accuracy"], callbacks=callbacks)

params, state = net._engine.param_array().copy(), net._engine.state_array().copy()
spread = max(float(np.abs(np.array(comm.allgather(a)) - a).max()) for a in (params, state))
masks = np.array(comm.allgather(net.forward(np.ones((4, 64), np.float32), training=True)))
histories = comm.gather(hist.history, root=0)
loaded = nb.load(os.path.join(out, "ckpt-4.nbp"))  # every rank can load what rank 0 wrote
ckpt = float(np.abs(loaded._engine.param_array() - params).max())
test = dp.evaluate(Xte, yte, loss="cross_entropy", metrics="accuracy")  # collective: every rank calls it
if comm.rank == 0:
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"histories": histories, "spread": spread, "dropout_differs": bool(np.any(masks[0] != masks[1])),
                   "checkpoint_diff": ckpt, "resyncs": dp.resyncs, "files": sorted(os.listdir(out)), "test_accuracy": test["accuracy"]},
                  f, indent=1)
