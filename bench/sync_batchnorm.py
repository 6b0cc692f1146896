"""The per-step cost of synced BatchNorm in DataParallel (run under mpiexec):

    mpiexec -n 2 python bench/sync_batchnorm.py --rounds 7 --epochs 2

The mnist network with a BatchNorm1d after each hidden Dense (784-256-BN-ReLU-128-BN-ReLU-10,
float32, Adam, batch 128 per rank, 4096 synthetic rows, 1 thread per rank), trained by
DataParallel.fit with BatchNorm synced (the engine's 3 small all-reduces per BatchNorm layer
per step) and, interleaved round by round, with the sync switched off (each rank normalising
with its own shard's statistics: the same compute without those collectives). Rank 0 prints the
median time per step of each, their difference, and the time spent inside the BatchNorm
all-reduces per step (including waiting for the other rank), and those 6 all-reduces alone
(the same sizes through the same callback, started together after a barrier; median of 200).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from configs import CONFIGS  # noqa: E402
from mpi_setup import ab_arguments, mnist  # noqa: E402

import nativebp as nb  # noqa: E402
from nativebp.distributed import DataParallel  # noqa: E402


def main():
    args = ab_arguments(__doc__)
    comm = MPI.COMM_WORLD
    a, h1, h2, out = CONFIGS["mnist"]["sizes"]
    _, X, y, net, _, fit = mnist([nb.Dense(a, h1), nb.BatchNorm1d(h1), nb.ReLU(), nb.Dense(h1, h2),
                                  nb.BatchNorm1d(h2), nb.ReLU(), nb.Dense(h2, out)])
    dp = DataParallel(net)
    dp.fit(X, y, epochs=1, **fit)  # warm-up
    per_step = {True: [], False: []}
    bn_comm = []
    for _ in range(args.rounds):
        for synced in (True, False):
            dp._sync_bn = synced  # off: per-rank statistics, the same compute without the collectives
            comm.Barrier()
            s0, b0, t = dp.steps, dp._bn_clock[0], time.perf_counter()
            dp.fit(X, y, epochs=args.epochs, **fit)
            seconds = comm.allreduce(time.perf_counter() - t, op=MPI.MAX)
            per_step[synced].append(seconds / (dp.steps - s0))
            if synced:
                bn_comm.append((dp._bn_clock[0] - b0) / (dp.steps - s0))
    sizes = [h1 + 1, h1, 2 * h2, h2 + 1, h2, 2 * h1]  # forward: [n, sum x], sum (x - mean)^2; backward: 2k
    bufs = [np.ones(k) for k in sizes]

    def six():
        comm.Barrier()
        t = time.perf_counter()
        for b in bufs:
            dp._allreduce(b)
        return time.perf_counter() - t
    alone = np.median([six() for _ in range(200)])
    if comm.rank == 0:
        on, off = np.median(per_step[True]), np.median(per_step[False])
        print(f"{comm.size} ranks, {args.rounds} rounds of {args.epochs} epochs, {dp.steps} steps in all; "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"step, BatchNorm synced:    {on * 1e3:.3f} ms (median; rounds {', '.join(f'{v * 1e3:.2f}' for v in per_step[True])})")
        print(f"step, per-rank BatchNorm:  {off * 1e3:.3f} ms (median; rounds {', '.join(f'{v * 1e3:.2f}' for v in per_step[False])})")
        print(f"difference: {(on - off) * 1e6:.0f} us per step ({(on - off) / off * 100:+.1f}%); inside the 6 "
              f"BatchNorm all-reduces: {np.median(bn_comm) * 1e6:.0f} us per step (median), "
              f"of which the collectives alone (after a barrier): {alone * 1e6:.1f} us")


if __name__ == "__main__":
    main()
