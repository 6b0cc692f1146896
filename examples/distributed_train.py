"""Data-parallel training over MPI: the same script on every rank, each training on its shard of
every global batch; the ranks end with identical weights. Run on 2 processes (or machines):

    pip install "nativebp[mpi]"
    mpiexec -n 2 python examples/distributed_train.py
    mpiexec -n 8 -hosts node1,node2 python examples/distributed_train.py   # MPICH, 4 ranks each

Without mpiexec it runs as one rank. Only rank 0 prints and writes the checkpoint.
"""
import os
import tempfile

import nativebp as nb
from nativebp.distributed import DataParallel

nb.set_num_threads(1)                                # one core per rank; start more ranks instead
X, y, Xt, yt = nb.datasets.load_digits_split()      # every rank loads the full data: it is sharded
net = nb.Sequential([nb.Dense(64, 128, init="he_uniform"), nb.BatchNorm1d(128), nb.ReLU(), nb.Dropout(0.1),
                     nb.Dense(128, 10)], seed=0)
dp = DataParallel(net)                               # rank 0's initial weights go to every rank
path = os.path.join(tempfile.gettempdir(), "digits-dp.nbp")
hist = dp.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net, lr=2e-3), epochs=15,
              batch_size=32,                         # per rank: a step sees 32 x ranks rows
              validation_data=(Xt, yt), metrics=["accuracy"], verbose=1,
              callbacks=[nb.callbacks.ModelCheckpoint(path), nb.callbacks.CosineAnnealingLR(T_max=15)])
test = dp.evaluate(Xt, yt, loss="cross_entropy", metrics="accuracy")   # collective: every rank calls it
if dp.rank == 0:
    print(f"{dp.size} rank(s): test accuracy {test['accuracy']:.4f}; {dp.comm_seconds:.2f} s in MPI; "
          f"checkpoint {path} reloads: {nb.load(path).num_parameters()} parameters")
