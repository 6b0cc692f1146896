"""The per-step cost of DataParallel's ``timeout`` (each collective marked as entered and left
for a watchdog thread that looks 20 times a second), run under mpiexec:

    mpiexec -n 2 -env OMP_NUM_THREADS 1 python bench/collective_timeout.py --rounds 7 --epochs 2

The mnist config (784-256-128-10, ReLU, float32, Adam, batch 128 per rank, 4096 synthetic rows,
1 thread per rank) trained by DataParallel.fit with ``timeout=60`` and, interleaved round by
round, without a timeout. Rank 0 prints the median time per step of each and their difference.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_setup import ab_arguments, mnist  # noqa: E402

from nativebp.distributed import DataParallel  # noqa: E402


def main():
    args = ab_arguments(__doc__)
    comm = MPI.COMM_WORLD
    _, X, y, net, _, fit = mnist()
    dp = DataParallel(net, timeout=60)
    timer = dp._timer
    dp.fit(X, y, epochs=1, **fit)  # warm-up
    per_step = {True: [], False: []}
    for _ in range(args.rounds):
        for timed in (True, False):
            dp._timer = timer if timed else None  # None: the blocking collectives
            comm.Barrier()
            s0, t = dp.steps, time.perf_counter()
            dp.fit(X, y, epochs=args.epochs, **fit)
            per_step[timed].append(comm.allreduce(time.perf_counter() - t, op=MPI.MAX) / (dp.steps - s0))
    if comm.rank == 0:
        on, off = np.median(per_step[True]), np.median(per_step[False])
        print(f"{comm.size} ranks, {args.rounds} rounds of {args.epochs} epochs; load average {os.getloadavg()[0]:.2f}")
        for label, key in (("timeout=60 (watchdog)", True), ("no timeout", False)):
            print(f"step, {label}: {np.median(per_step[key]) * 1e3:.3f} ms (median; rounds "
                  f"{', '.join(f'{v * 1e3:.2f}' for v in per_step[key])})")
        print(f"difference: {(on - off) * 1e6:+.0f} us per step ({(on - off) / off * 100:+.1f}%)")


if __name__ == "__main__":
    main()
