"""Run under `mpiexec -n 2`: errors that every rank detects together are raised on every rank
(and can be caught there) instead of aborting the job. Rank 0 writes JSON to argv[1]: for each
case, the exception type and message each rank caught, and whether the weights stayed equal.
"""
import json
import sys

import numpy as np
from mpi4py import MPI

import nativebp as nb
from nativebp.distributed import DataParallel

comm = MPI.COMM_WORLD
rng = np.random.default_rng(0)
X, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
net = nb.Sequential([nb.Dense(3, 4), nb.BatchNorm1d(4), nb.Tanh(), nb.Dense(4, 1)], dtype="float64", seed=0)
dp = DataParallel(net)
opt = nb.optim.SGD(net, lr=0.1)
# float32, targets near its largest value: each rank's output-bias gradient (-2e38) is finite,
# their sum overflows, while the loss (summed in float64, ~4e76) stays finite
net32 = nb.Sequential([nb.Dense(3, 4), nb.Tanh(), nb.Dense(4, 1)], seed=0)
dp32, opt32 = DataParallel(net32), nb.optim.SGD(net32, lr=0.1)
huge = np.full((10, 1), 2e38, np.float32)
cases = {
    # each rank passes different rows: the ranks would shard different data
    "different_data": lambda: dp.fit(X + comm.rank, y, optimizer=opt, verbose=0),
    # 41 rows in global batches of 8 leave a 1-row batch, which BatchNorm cannot normalise
    "one_row_batch": lambda: dp.fit(np.vstack([X, X[:1]]), np.vstack([y, y[:1]]), optimizer=opt, batch_size=4,
                                    verbose=0),
    # a huge target on rank 1 only: the global loss is infinite, every rank skips the step
    "non_finite_loss": lambda: dp.train_step(X[:10], y[:10] * (1e300 if comm.rank else 1.0), optimizer=opt),
    "non_finite_summed_gradient": lambda: dp32.train_step(X[:10].astype(np.float32), huge, optimizer=opt32),
    # empty shards everywhere, and 1 row in all (BatchNorm's global batch needs 2)
    "no_rows": lambda: dp.train_step(X[:0], y[:0], optimizer=opt),
    "one_row_in_all": lambda: dp.train_step(X[:1 - comm.rank], y[:1 - comm.rank], optimizer=opt),
}
before = net._engine.param_array().copy(), net._engine.state_array().copy(), net32._engine.param_array().copy()
out = {}
for name, run in cases.items():
    try:
        run()
        caught = None
    except Exception as e:
        caught = f"{type(e).__name__}: {e}"
    out[name] = comm.gather(caught, root=0)
after = net._engine.param_array(), net._engine.state_array(), net32._engine.param_array()
unchanged = all(np.array_equal(a, b) for a, b in zip(before, after))
out["unchanged"] = comm.gather(unchanged, root=0)
if comm.rank == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
