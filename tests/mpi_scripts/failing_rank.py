"""Run under `mpiexec -n 2`: rank 1 fails during epoch 2 of a DataParallel.fit that writes a
checkpoint per epoch to argv[1]; argv[2] says how it fails:

- "raise": an exception inside fit on rank 1 (rank 0 is then waiting in a collective);
- "uncaught": rank 1 raises in user code between two fit calls while rank 0 trains;
- "exit": rank 1's process ends abruptly (os._exit(3)) inside fit;
- "kill": rank 1 is killed (SIGKILL) inside fit;
- "stuck": rank 1 loops forever inside fit while rank 0 waits in a collective; argv[3], when
  given, is DataParallel's ``timeout`` in seconds (without one this case hangs).

The job must end with a non-zero exit, a message naming rank 1 (for "exit" and "kill" it comes
from the launcher, which knows the process by its pid: each rank prints its pid first), and a
loadable epoch-1 checkpoint.
"""
import os
import signal
import sys
import time

import numpy as np
from mpi4py import MPI

import nativebp as nb
from nativebp.distributed import DataParallel

comm = MPI.COMM_WORLD
folder, mode = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
net = nb.Sequential([nb.Dense(5, 8), nb.Tanh(), nb.Dense(8, 3)], dtype="float64", seed=0)
opt = nb.optim.SGD(net, lr=0.1)
print(f"rank {comm.rank} pid {os.getpid()}", flush=True)  # to find the rank the launcher names by pid
dp = DataParallel(net, timeout=float(sys.argv[3]) if len(sys.argv) > 3 else None)
fit = dict(loss="cross_entropy", optimizer=opt, batch_size=8, seed=1, verbose=0,
           callbacks=[nb.callbacks.ModelCheckpoint(os.path.join(folder, "ckpt-{epoch}.nbp"))])


class FailingEngine:
    """The real engine, except that the 6th loss_and_grad (epoch 2: 4 steps an epoch) fails."""

    def __init__(self, engine):
        self.engine, self.calls = engine, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def loss_and_grad(self, *args):
        self.calls += 1
        if self.calls == 6:
            if mode == "exit":
                os._exit(3)
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "stuck":  # a compute loop that never ends: the others wait in a collective
                while True:
                    time.sleep(0.01)
            raise RuntimeError("injected failure in the backward pass")
        return self.engine.loss_and_grad(*args)


if mode == "uncaught":
    dp.fit(X, y, epochs=1, **fit)
    if comm.rank == 1:
        raise RuntimeError("injected failure between epochs")
    dp.fit(X, y, epochs=2, initial_epoch=1, **fit)  # rank 0 waits for rank 1 in here
else:
    if comm.rank == 1:
        net._engine = FailingEngine(net._engine)
    dp.fit(X, y, epochs=3, **fit)
print("unreachable: rank", comm.rank, "finished", flush=True)
