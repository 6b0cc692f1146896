"""Data-parallel scaling of the `mnist` config (784-256-128-10, Adam, batch 128 per rank) over MPI.

    python bench/scaling.py                 # 1 and 2 ranks, 1 thread each; prints a markdown report
    python bench/scaling.py --ranks 1,2,4 --rounds 5 --json out.json

Launches `mpiexec -n N python bench/scaling.py --worker` for each N, interleaved over rounds
(medians are reported, so a burst of foreign load hits one round, not one rank count); a job
during which other processes used more than --max-foreign of the machine's CPU is re-run. Each
worker measures, with OMP_NUM_THREADS=1:
- samples/s of DataParallel.fit (whole epochs, after a warm-up epoch), wall clock and CPU time;
- the parts of one step on rank 0: forward, forward + backward, the optimizer step, and the
  collectives (the per-step allgather of the loss and the in-place Allreduce of the gradient);
- an all-reduce sweep over message sizes (median of many calls), fitted to t = a + b * bytes.
The report projects throughput to N machines with a ring all-reduce, whose every rank sends and
receives 2 (N - 1) / N x the gradient bytes in 2 (N - 1) messages, under stated network numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [2 ** k for k in range(10, 24, 2)]  # all-reduce sweep, bytes: 1 KiB .. 4 MiB
NETWORKS = {  # assumed interconnects for the projection: (name, latency s, bandwidth bytes/s per direction)
    "10GbE": (25e-6, 10e9 / 8 * 0.9),
    "25GbE": (15e-6, 25e9 / 8 * 0.9),
    "100Gb InfiniBand": (3e-6, 100e9 / 8 * 0.9),
}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return median(out)


# ------------------------------------------------------------------------------ worker (under mpiexec)
def worker(epochs):
    import numpy as np
    from mpi4py import MPI

    import nativebp as nb
    from nativebp.distributed import DataParallel
    sys.path.insert(0, HERE)
    from configs import CONFIGS, make_data

    nb.set_num_threads(1)
    comm = MPI.COMM_WORLD
    R, rank = comm.Get_size(), comm.Get_rank()
    cfg = CONFIGS["mnist"]
    X, y = make_data(cfg, 0)
    s = cfg["sizes"]
    layers = []
    for a, b in zip(s[:-1], s[1:]):
        layers += [nb.Dense(a, b), nb.ReLU()]
    net = nb.Sequential(layers[:-1], dtype="float32", seed=0)
    opt = nb.optim.Adam(net, lr=cfg["lr"])
    dp = DataParallel(net)
    B = cfg["batch"]
    fit = dict(loss=cfg["loss"], optimizer=opt, batch_size=B, verbose=0)
    dp.fit(X, y, epochs=1, **fit)  # warm-up: buffers sized, caches warm
    comm.Barrier()
    c0, s0 = dp.comm_seconds, dp.steps
    w, c = time.perf_counter(), time.process_time()
    dp.fit(X, y, epochs=epochs, **fit)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    comm_per_step = (dp.comm_seconds - c0) / (dp.steps - s0)
    wall = comm.allreduce(wall, op=MPI.MAX)
    samples = epochs * (len(X) - len(X) % (B * R) if len(X) % (B * R) else len(X))

    baseline = None
    if R == 1:  # the single-process fused loop (C++ epochs) on the same data, for reference
        ref = nb.Sequential(layers[:-1], dtype="float32", seed=0)
        ref_opt = nb.optim.Adam(ref, lr=cfg["lr"])
        ref.fit(X, y, loss=cfg["loss"], optimizer=ref_opt, batch_size=B, verbose=0)
        w = time.perf_counter()
        ref.fit(X, y, loss=cfg["loss"], optimizer=ref_opt, batch_size=B, epochs=epochs, verbose=0)
        baseline = epochs * len(X) / (time.perf_counter() - w)
    # the parts of one step, on this rank's shard
    Xb, yb = X[:B], y[:B]
    eng = net._engine
    fwd = timed(lambda: eng.forward(Xb, True), 30)
    fwd_bwd = timed(lambda: (eng.zero_grad(), eng.loss_and_grad(Xb, yb, cfg["loss"], 1.0, False, True)), 30)
    step = timed(lambda: eng.step(opt._engine, opt._owned), 30)
    # the first Dense layer's backward (its dW is the biggest product, and it runs last): the full
    # network's backward minus that of the layers after it, timed with their input gradient
    tail = nb.Sequential(layers[2:-1], dtype="float32", seed=0)
    H = np.maximum(Xb @ net.parameters()[0].value, 0)
    tail_fb = timed(lambda: (tail._engine.zero_grad(), tail._engine.loss_and_grad(H, yb, cfg["loss"], 1.0, True, True)), 30)
    tail_f = timed(lambda: tail._engine.forward(H, True), 30)
    grad = eng.grad_array()
    part = {"first_layer_backward_s": (fwd_bwd - fwd) - (tail_fb - tail_f)}
    if R > 1:  # the gradient all-reduce alone, and the sweep over message sizes
        def allreduce(buf):
            comm.Barrier()
            t = MPI.Wtime()
            comm.Allreduce(MPI.IN_PLACE, buf)
            return MPI.Wtime() - t
        grad_copy = grad.copy()  # leave the trained gradient alone
        part["allreduce_grad_s"] = median([allreduce(grad_copy) for _ in range(200)])
        part["sweep"] = {}
        for n in SIZES:  # one buffer per size, touched before timing: no page faults in the timed calls
            buf = np.ones(n // 4, np.float32)
            allreduce(buf)
            part["sweep"][n] = median([allreduce(buf) for _ in range(100 if n < 2**20 else 40)])
    # bytes of each Dense layer's gradient, in backward order (the last layer's is ready first)
    per_layer = [int(np.prod(p.shape)) * 4 for p in net.parameters()]
    result = dict(ranks=R, threads=nb.get_num_threads(), batch_per_rank=B, global_batch=B * R, samples=samples,
                  wall_s=wall, samples_per_s=samples / wall, net_fit_samples_per_s=baseline, cpu_s_rank0=cpu, comm_s_per_step=comm_per_step,
                  forward_s=fwd, forward_backward_s=fwd_bwd, optimizer_step_s=step, grad_bytes=int(grad.nbytes),
                  param_tensor_bytes=per_layer, **part)
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------ driver
def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(beside):
        return beside
    from shutil import which
    if which("mpiexec"):
        return which("mpiexec")
    sys.exit("bench/scaling.py: no mpiexec beside python or on PATH; pip install mpi4py mpich")


def busy_cpu_seconds():
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def run(ranks, epochs, max_foreign, retries):
    """One mpiexec job; re-run (up to `retries` times, after a pause) while other processes used
    more than `max_foreign` of the machine's CPU during it. Returns the result with the least."""
    import resource
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker", "--epochs", str(epochs)]
    best = None
    for attempt in range(retries + 1):
        own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy0, t0 = busy_cpu_seconds(), time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        wall, busy = time.perf_counter() - t0, busy_cpu_seconds() - busy0
        own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (own1.ru_utime - own0.ru_utime) + (own1.ru_stime - own0.ru_stime)
        lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
        if p.returncode or not lines:
            sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        r = json.loads(lines[0][len("RESULT "):])
        r["foreign_cpu_share"] = max(0.0, busy - own) / (wall * os.cpu_count())
        if best is None or r["foreign_cpu_share"] < best["foreign_cpu_share"]:
            best = r
        if r["foreign_cpu_share"] <= max_foreign:
            break
        time.sleep(min(30, 5 * (attempt + 1)))
    return best


def fit_alpha_beta(sweep):
    """t = a + b * bytes: a (latency) from the smallest message, b (seconds per byte) from a least
    squares line over the messages of 64 KiB and more, where bandwidth rules."""
    big = [(float(k), t) for k, t in sweep.items() if int(k) >= 2 ** 16]
    mx, mt = sum(x for x, _ in big) / len(big), sum(t for _, t in big) / len(big)
    b = sum((x - mx) * (t - mt) for x, t in big) / sum((x - mx) ** 2 for x, _ in big)
    return sweep[min(sweep, key=int)], b


def ring(n, nbytes, alpha, bw):
    """Ring all-reduce time: 2 (n - 1) steps, each one message of nbytes / n."""
    return 0.0 if n == 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bw


def report(results, load, max_foreign):
    """Medians over the runs within max_foreign (all runs of a rank count where none is)."""
    by = {}
    for r in results:
        by.setdefault(r["ranks"], []).append(r)
    dropped = 0
    for n, rs in by.items():
        clean = [r for r in rs if r["foreign_cpu_share"] <= max_foreign]
        dropped += len(rs) - len(clean) if clean else 0
        by[n] = clean or rs
    results = [r for rs in by.values() for r in rs]
    med = {n: {k: median([r[k] for r in rs]) for k in ("samples_per_s", "cpu_s_rank0", "comm_s_per_step",
                                                          "forward_s", "forward_backward_s", "optimizer_step_s")}
           for n, rs in by.items()}
    one = by[min(by)][0]
    G, B = one["grad_bytes"], one["batch_per_rank"]
    out = [f"load average before the run: {load}; {dropped} run(s) left out: other processes used more than "
           f"{max_foreign:.0%} of the CPU during them", "",
           "| ranks x threads | global batch | samples/s (median) | speed-up | rounds | comm per step (rank 0) | "
           "foreign CPU (max) |", "|---|---|---|---|---|---|---|"]
    base = med[min(med)]["samples_per_s"]
    for n in sorted(med):
        m = med[n]
        out.append(f"| {n} x 1 | {B * n} | {m['samples_per_s']:,.0f} | {m['samples_per_s'] / base:.2f} | "
                   f"{len(by[n])} | {m['comm_s_per_step'] * 1e6:,.0f} us | "
                   f"{max(r['foreign_cpu_share'] for r in by[n]):.0%} |")
    m1 = med[min(med)]
    fits = [r["net_fit_samples_per_s"] for r in results if r.get("net_fit_samples_per_s")]
    if fits:
        out += ["", f"For reference, `net.fit` (epochs in C++, 1 process, 1 thread, batch {B}): "
                f"{median(fits):,.0f} samples/s (median of {len(fits)})."]
    step_s = {n: median([r["wall_s"] * r["global_batch"] / r["samples"] for r in rs]) for n, rs in by.items()}
    out += ["", "Time per step (median): " + "; ".join(f"{n} rank(s) {t * 1e3:.2f} ms, of which collectives "
                                                      f"{med[n]['comm_s_per_step'] * 1e3:.2f} ms (incl. waiting "
                                                      f"for the slower rank)" for n, t in sorted(step_s.items()))]
    compute = step_s[min(step_s)]  # a whole 1-rank step as fit runs it: gather, compute, Python
    bwd = m1["forward_backward_s"] - m1["forward_s"]
    out += ["", f"One step on one rank (batch {B}, 1 thread): forward {m1['forward_s'] * 1e3:.2f} ms, forward + "
            f"backward {m1['forward_backward_s'] * 1e3:.2f} ms (backward ~{bwd * 1e3:.2f} ms), Adam step "
            f"{m1['optimizer_step_s'] * 1e3:.2f} ms.",
            f"Gradient: {G:,} bytes (float32) per step; a ring all-reduce sends and receives "
            f"2(N-1)/N x that per rank: {G:,} bytes at N = 2, {int(1.75 * G):,} at N = 8."]
    multi = [r for r in results if "sweep" in r]
    if multi:
        ar = median([r["allreduce_grad_s"] for r in multi])
        sweep = {int(k): median([r["sweep"][k] for r in multi]) for k in multi[0]["sweep"]}
        a, b = fit_alpha_beta(sweep)
        out += ["", f"Measured all-reduce at {multi[0]['ranks']} ranks (shared memory, median): gradient "
                f"({G:,} B) {ar * 1e6:,.0f} us = {ar / compute:.1%} of a 1-rank step; from the sweep: latency "
                f"{a * 1e6:.1f} us (1 KiB), {1 / b / 1e9:.2f} GB/s (slope over 64 KiB - 4 MiB).", "",
                "| bytes | " + " | ".join(f"{k:,}" for k in sweep) + " |",
                "|---|" + "---|" * len(sweep),
                "| us | " + " | ".join(f"{v * 1e6:,.1f}" for v in sweep.values()) + " |"]
        nets = dict(NETWORKS, **{"measured shared memory": (a / 2, 1 / b)})
        out += ["", "Projection to N machines, 1 rank each, batch 128 per rank: step = the measured "
                f"1-rank step ({compute * 1e3:.2f} ms) + ring all-reduce(N, gradient bytes); no overlap.", "",
                "| network (latency, bandwidth) | " + " | ".join(f"N={n}" for n in (2, 4, 8, 16, 64)) + " |",
                "|---|" + "---|" * 5]
        for name, (lat, bw) in nets.items():
            cells = []
            for n in (2, 4, 8, 16, 64):
                t = ring(n, G, lat, bw)
                cells.append(f"{n * B / (compute + t):,.0f} ({compute / (compute + t):.0%})")
            out.append(f"| {name} ({lat * 1e6:.1f} us, {bw / 1e9:.2f} GB/s) | " + " | ".join(cells) + " |")
        out += ["", "cells: projected samples/s (parallel efficiency = 1-rank step / projected step)"]
        # bucketed overlap: what could be all-reduced while the first layer still runs backward
        first = sum(one["param_tensor_bytes"][:2])
        early, hide = G - first, median([r["first_layer_backward_s"] for r in results])
        out += ["", f"Bucketed overlap bound: the first Dense layer holds {first / G:.1%} of the gradient and its "
                f"backward runs last ({hide * 1e3:.2f} ms of the {bwd * 1e3:.2f} ms backward); only the other "
                f"{early:,} bytes ({early / G:.1%}) are ready earlier. The most overlap can save per step is "
                f"the all-reduce of those bytes, if a spare core drives it:", "",
                "| network | N | all-reduce of all / of the early bytes | saving per step |", "|---|---|---|---|"]
        for name, (lat, bw) in nets.items():
            for n in (2, 8):
                full, part = ring(n, G, lat, bw), ring(n, early, lat, bw)
                save = min(part, hide)
                out.append(f"| {name} | {n} | {full * 1e6:,.0f} us / {part * 1e6:,.0f} us | {save * 1e6:,.0f} us "
                           f"= {save / (compute + full):.1%} of the step |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma-separated (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (default 3)")
    ap.add_argument("--epochs", type=int, default=4, help="timed epochs of 4096 rows per run (default 4)")
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="re-run a job while other processes used more than this share of all cores (default 0.1)")
    ap.add_argument("--retries", type=int, default=4, help="re-runs allowed per job (default 4)")
    ap.add_argument("--json", help="also write the raw results here (with the load average)")
    ap.add_argument("--from-json", help="only print the report of a --json file written before")
    a = ap.parse_args()
    if a.worker:
        return worker(a.epochs)
    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        return print(report(saved["results"], saved["load"], a.max_foreign))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results = [run(n, a.epochs, a.max_foreign, a.retries) for _ in range(a.rounds) for n in map(int, a.ranks.split(","))]
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load": load, "results": results}, f, indent=1)
    print(report(results, load, a.max_foreign))


if __name__ == "__main__":
    main()
