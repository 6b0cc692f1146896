"""DataParallel's ``timeout``: a watchdog thread that ends the job when a collective lasts too long.

A rank that dies is reported by the launcher (MPICH's mpiexec ends the job at once); a rank that
is alive but never arrives (stuck in a compute loop, a deadlock, a hung file system) would leave
the others waiting in the collective forever. The training thread marks when it enters and leaves
each collective (two attribute writes: the collectives themselves stay the blocking ones, which
release the GIL); a daemon thread looks 20 times a second. Past the timeout, the ranks that are
waiting find each other (each sends "I am waiting" to all on a private communicator, and a rank
that has waited 50 ms or more answers such a message by joining in) and the lowest of them
aborts the job naming the ranks that did not answer. Needs MPI_THREAD_MULTIPLE (mpi4py's default).
"""
from __future__ import annotations

import os
import sys
import threading
import time

_TAG = 7001
_POLL = 0.05      # seconds between the watchdog's looks; also the wait that counts as "waiting"
_GRACE = 1.0      # seconds to hear from the other waiting ranks once alarmed


class CollectiveTimeout:
    def __init__(self, comm, MPI, seconds):
        if MPI.Query_thread() != MPI.THREAD_MULTIPLE:
            raise ValueError("timeout: needs MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default; do not "
                             "lower mpi4py.rc.thread_level)")
        self.comm, self.MPI, self.seconds = comm, MPI, float(seconds)
        self.alarms = comm.Dup()  # its own communicator: alarm messages never meet the training's
        self.step = 0  # the DataParallel's step count, for the message
        self.inside = None  # (what, monotonic start) while the training thread is in a collective
        threading.Thread(target=self._watch, name="nativebp-collective-timeout", daemon=True).start()

    def enter(self, what):
        self.inside = (what, time.monotonic())

    def leave(self):
        self.inside = None

    def _watch(self):
        while not self.MPI.Is_finalized():
            time.sleep(_POLL)
            inside = self.inside
            if inside is None:
                continue
            waited = time.monotonic() - inside[1]
            if waited < _POLL:  # a collective in progress, as usual
                continue
            if waited >= self.seconds or self.alarms.Iprobe(source=self.MPI.ANY_SOURCE, tag=_TAG):
                self._abort(inside[0], waited)

    def _abort(self, what, waited):
        me, size, MPI = self.comm.Get_rank(), self.comm.Get_size(), self.MPI
        for r in range(size):  # tell every rank that this one is waiting
            if r != me:
                self.alarms.isend(me, dest=r, tag=_TAG)
        waiting, end = {me}, time.monotonic() + _GRACE
        while time.monotonic() < end:
            if self.alarms.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG):
                waiting.add(self.alarms.recv(source=MPI.ANY_SOURCE, tag=_TAG))
            else:
                time.sleep(0.001)
        absent = [r for r in range(size) if r not in waiting]
        if me == min(waiting):  # one message for the job
            names = ", ".join(map(str, absent)) if absent else "none (all are waiting: mismatched collectives)"
            sys.stdout.flush()
            sys.stderr.write(f"nativebp.distributed: rank {me} of {size} waited {waited:.1f} s in {what} at step "
                             f"{self.step}; rank(s) that did not arrive: {names} (timeout={self.seconds:g} s); "
                             f"aborting all ranks\n")
            sys.stderr.flush()
            time.sleep(0.2)  # let the launcher forward the message before the job is killed
        else:
            time.sleep(_GRACE)  # the lowest waiting rank aborts; this one only if that fails
        self.comm.Abort(1)
        os._exit(1)
