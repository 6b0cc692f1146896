"""A/B wall-clock of two nativebp builds on a shared machine: processes alternate old, new, old,
new, ...; each times train_steps (or forward, for infer configs) in 7 windows of 0.1 s and reports
its median window; the result is the median over processes of each build, and each pair's ratio.

    python bench/ab.py OLD_DIR NEW_DIR --config deep --threads 1 --rounds 8

OLD_DIR and NEW_DIR each hold a `nativebp` package (the Python files and the built `_core_*.so`,
e.g. copied from site-packages after a build). An editable install's import hook is bypassed.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child(pkg, config, threads, windows=7):
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
    sys.path[:0] = [pkg, str(Path(__file__).resolve().parent)]
    import numpy as np
    import nativebp as nb
    from configs import CONFIGS, make_data
    from peers.nativebp_peer import build
    assert nb.__file__.startswith(str(Path(pkg).resolve())), nb.__file__
    nb.set_num_threads(threads)
    cfg = CONFIGS[config]
    X, y = make_data(cfg, 0)
    net = build(cfg["sizes"], cfg["act"], 0)
    if cfg["kind"] == "infer":
        x = np.ascontiguousarray(X[:cfg["batch"]])
        run, units = (lambda: [net.forward(x) for _ in range(200)]), 200 * cfg["batch"]
    else:
        opt = (nb.optim.Adam(net, lr=cfg["lr"]) if cfg["opt"] == "adam"
               else nb.optim.SGD(net, lr=cfg["lr"], momentum=cfg["momentum"]))
        run = lambda: net.train_steps(X, y, loss=cfg["loss"], optimizer=opt, steps=256, batch_size=cfg["batch"])
        units = 256 * (1 if cfg["unit"] == "steps/s" else cfg["batch"])
    run(), run()
    rates = []
    for _ in range(windows):
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.1:
            run()
            n += 1
        rates.append(n * units / (time.perf_counter() - t0))
    print(statistics.median(rates))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dirs", nargs="+")
    p.add_argument("--config", default="deep")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--child", action="store_true")
    a = p.parse_args()
    if a.child:
        return child(a.dirs[0], a.config, a.threads)
    old, new = a.dirs
    rates = {old: [], new: []}
    for _ in range(a.rounds):
        for d in (old, new):
            out = subprocess.run([sys.executable, __file__, d, "--child", "--config", a.config,
                                  "--threads", str(a.threads)], capture_output=True, text=True, check=True)
            rates[d].append(float(out.stdout.split()[-1]))
    mo, mn = statistics.median(rates[old]), statistics.median(rates[new])
    faster = sum(n > o for o, n in zip(rates[old], rates[new]))
    print(f"{a.config}, {a.threads} thread(s), {a.rounds} pairs: old {mo:,.0f}  new {mn:,.0f}  new/old {mn / mo:.3f}  "
          f"(new faster in {faster} of {a.rounds} pairs)")
    print("old:", [round(r) for r in rates[old]], "\nnew:", [round(r) for r in rates[new]])


if __name__ == "__main__":
    main()
