"""Measure one peer on one config at one thread count, in this process, and print one JSON line.

    python bench/peer.py --peer numpy --config mnist --threads 1 --windows 3 --window 0.5

run.py spawns this once per (peer, config, threads, round). Thread counts are set through the
environment *before* any numerical library loads, and again through each library's API.
"""
import argparse
import json
import os
import statistics
import sys
import time
import traceback


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", required=True, choices=["nativebp", "numpy", "torch", "sklearn"])
    p.add_argument("--config", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", type=int, default=3, help="timed windows after the warm-up")
    p.add_argument("--window", type=float, default=0.5, help="seconds per timed window")
    p.add_argument("--warmup", type=float, default=0.3, help="seconds of warm-up")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def set_thread_env(threads):
    """Thread counts by environment, for libraries that read it at load time.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on this machine kind and slow NumPy's OpenBLAS
    down; the benchmark lets OpenBLAS detect the CPU itself (the kernel is reported).
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(var, None)


def measure(fn, units_per_call, warmup, windows, window):
    """Warm up, then time `windows` windows of at least `window` seconds; rates in units/s."""
    fn()
    t_end = time.perf_counter() + warmup
    while time.perf_counter() < t_end:
        fn()
    rates = []
    for _ in range(windows):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= window:
                break
        rates.append(calls * units_per_call / elapsed)
    return rates


def blas_info():
    """What threadpoolctl sees loaded: BLAS libraries (kernel, version) and OpenMP runtimes."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "prefix", "version", "architecture",
            "threading_layer", "num_threads")
    return [dict({k: d.get(k) for k in keys}, lib=os.path.basename(os.path.dirname(d["filepath"])))
            for d in threadpool_info()]


def main(argv=None):
    args = parse_args(argv)
    set_thread_env(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from configs import CONFIGS, gflop_per_unit, make_data
    import peers

    cfg = CONFIGS[args.config]
    out = dict(peer=args.peer, config=args.config, threads=args.threads, unit=cfg["unit"])
    try:
        mod = peers.load(args.peer)
    except Exception as e:  # the package is missing or does not import: skip, do not fail
        print(json.dumps(dict(out, ok=False, scope="peer", skip=f"{type(e).__name__}: {e}")))
        return 0
    if peers.why_not(args.peer, args.config):
        print(json.dumps(dict(out, ok=False, skip=peers.why_not(args.peer, args.config))))
        return 0
    try:
        info = mod.setup(args.threads)
        data = None if cfg["kind"] == "gemm" else make_data(cfg, args.seed)
        runners, notes = mod.runners(cfg, data, args.seed)
        windows = {name: measure(fn, units, args.warmup, args.windows, args.window)
                   for name, (fn, units) in runners.items()}
        medians = {name: statistics.median(rates) for name, rates in windows.items()}
        info["blas"] = blas_info()
        print(json.dumps(dict(out, ok=True, value=max(medians.values()), runners=medians,
                              windows=windows, gflops_per_unit=gflop_per_unit(cfg),
                              notes=notes, info=info)))
    except NotImplementedError as e:  # the peer lacks a feature this config needs
        print(json.dumps(dict(out, ok=False, skip=str(e))))
    except Exception as e:
        traceback.print_exc()
        print(json.dumps(dict(out, ok=False, error=f"{type(e).__name__}: {e}")))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
