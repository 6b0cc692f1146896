"""Side-by-side benchmark: nativebp vs PyTorch, plain NumPy and scikit-learn on the same MLPs.

    python bench/run.py                  # full run: about 8 minutes on a 2-core machine
    python bench/run.py --quick          # about 2 minutes
    python bench/run.py --busy --configs mnist   # with another process keeping one core busy

Each measurement is its own process (bench/peer.py); peers are interleaved within each round,
and each cell is the median over rounds. Prints one table and writes bench/RESULTS.md.
"""
import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from configs import CONFIGS  # noqa: E402
import peers  # noqa: E402

PEERS = ["nativebp", "numpy", "torch", "sklearn"]
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FULL = dict(rounds=3, windows=5, window=0.3, warmup=0.3)
QUICK = dict(rounds=1, windows=3, window=0.2, warmup=0.1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--peers", type=csv, default=PEERS, help="comma list (default: all)")
    p.add_argument("--configs", type=csv, default=list(CONFIGS), help="comma list (default: all)")
    p.add_argument("--threads", type=lambda s: [int(x) for x in csv(s)], default=[1, 2])
    p.add_argument("--quick", action="store_true", help="one round of short windows")
    p.add_argument("--busy", action="store_true",
                   help="run while another process keeps one core busy")
    p.add_argument("--rounds", type=int, help="processes per cell (full 3, quick 1)")
    p.add_argument("--windows", type=int, help="timed windows per process (full 5, quick 3)")
    p.add_argument("--window", type=float, help="seconds per window (full 0.3, quick 0.2)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (full 0.3, quick 0.1)")
    p.add_argument("--max-foreign", type=float, default=0.05,
                   help="measure again when other processes used more CPU than this (cores)")
    p.add_argument("--retries", type=int, default=3, help="re-measurements per job at most")
    p.add_argument("--max-wait", type=float, default=120.0,
                   help="seconds to wait for other processes to go quiet before a retry")
    p.add_argument("--realtime", action="store_true",
                   help="run the measured processes under SCHED_RR, ahead of every other "
                        "process: for a shared machine; needs root; not with --busy")
    p.add_argument("--priority", action="store_true",
                   help="give the measured processes (and the --busy spinner) nearly all the CPU "
                        "over other sessions' processes: for a shared machine; needs root")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="markdown to update")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.realtime and args.busy:
        p.error("--realtime starves the --busy spinner; use --priority with --busy")
    if args.realtime or args.priority:
        args.retries = 0  # others then only get the cores we leave idle: nothing to repeat
    bad = [c for c in args.configs if c not in CONFIGS] + [x for x in args.peers if x not in PEERS]
    if bad:
        p.error(f"unknown config or peer: {', '.join(bad)}")
    return args


def run_child(args, peer, config, threads):
    """One measurement in a fresh process; returns its JSON (or an error record)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    for var in BLAS_ENV:
        env.pop(var, None)
    cmd = [sys.executable, os.path.join(HERE, "peer.py"), "--peer", peer, "--config", config,
           "--threads", str(threads), "--windows", str(args.windows),
           "--window", str(args.window), "--warmup", str(args.warmup)]
    record = dict(peer=peer, config=config, threads=threads, ok=False)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                              **(own_group(args.priority) if args.priority else
                                 dict(preexec_fn=realtime) if args.realtime else {}))
    except subprocess.TimeoutExpired:
        return dict(record, error="timed out after 300 s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return dict(record, error=f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    out = json.loads(lines[-1])
    if "error" in out:
        out["error"] += f" | {proc.stderr.strip()[-500:]}"
    return out


def realtime():
    """Round-robin real-time priority 1: the measured process (its threads inherit it) runs
    ahead of, and preempts at once, every normal process."""
    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))


def own_group(priority):
    """Popen arguments for --priority: a new session, hence its own scheduler autogroup, at
    nice -20. The normal scheduler (CFS) then gives that group some 90 times the weight of
    another session's group, and is as fair as ever inside it. A --busy spinner gets a group
    of its own at the same weight, like a busy process started from another terminal."""
    def raise_group():
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
    return dict(start_new_session=True, preexec_fn=raise_group) if priority else {}


def plan(args):
    """Jobs round by round; within a round each cell's peers go in an order rotated per round."""
    jobs = []
    for r in range(args.rounds):
        for i, config in enumerate(args.configs):
            for threads in args.threads:
                k = (r + i) % len(args.peers)
                for peer in args.peers[k:] + args.peers[:k]:
                    jobs.append((r, peer, config, threads))
    return jobs


class ForeignLoad:
    """CPU that processes other than ours (and the --busy spinner) use, in cores.

    The machine's busy time comes from /proc/stat, ours from getrusage (children are counted
    once waited for) and the spinner's from /proc/PID/stat. Other engineers' builds on a shared
    2-core machine would otherwise pass for slow peers.
    """
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, spinner=None):
        self.spinner = spinner

    def sample(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = (sum(v) - v[3] - v[4]) / self.TICK  # all but idle and iowait
        ours = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))
        if self.spinner:
            with open(f"/proc/{self.spinner.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ours += (int(fields[11]) + int(fields[12])) / self.TICK
        return time.monotonic(), busy, ours

    def since(self, start):
        (t0, b0, o0), (t1, b1, o1) = start, self.sample()
        return max(0.0, (b1 - b0) - (o1 - o0)) / max(t1 - t0, 1e-9)

    def wait_quiet(self, limit, max_wait):
        """Wait (at most max_wait s) until a 1 s sample shows less than `limit` foreign cores."""
        t_end = time.monotonic() + max_wait
        while time.monotonic() < t_end:
            start = self.sample()
            time.sleep(1.0)
            if self.since(start) < limit:
                return True
        return False


def measure_all(args, spinner=None):
    skips, records = {}, []
    for peer in args.peers:
        for config in args.configs:
            reason = peers.why_not(peer, config)
            if reason:
                skips[(peer, config)] = reason
    load = ForeignLoad(spinner)
    jobs = [j for j in plan(args) if (j[1], j[2]) not in skips]
    for n, (r, peer, config, threads) in enumerate(jobs, 1):
        if (peer, config) in skips or (peer, None) in skips:
            continue
        for attempt in range(1 + args.retries):
            start = load.sample()
            out = run_child(args, peer, config, threads)
            out.update(round=r, foreign=load.since(start), attempts=attempt + 1)
            if out["foreign"] <= args.max_foreign or attempt == args.retries:
                break
            print(f"          other processes used {out['foreign']:.2f} cores: waiting, then "
                  "measuring again", file=sys.stderr, flush=True)
            load.wait_quiet(args.max_foreign, args.max_wait)
        if out.get("skip"):
            skips[(peer, None if out.get("scope") == "peer" else config)] = out["skip"]
        records.append(out)
        shown = (f"{out['value']:,.1f} {out['unit']}" if out.get("ok")
                 else out.get("skip") or out.get("error"))
        print(f"[{n:3}/{len(jobs)}] round {r + 1} {config:12} t={threads} {peer:9} {shown}"
              f"{' (foreign load %.2f cores)' % out['foreign'] if out['foreign'] > 0.02 else ''}",
              file=sys.stderr, flush=True)
    return records, skips


def summarize(records, max_foreign):
    """cells[(config, threads, peer)] -> best runner's median over rounds, with its details."""
    by_cell = {}
    for rec in records:
        if rec.get("ok"):
            by_cell.setdefault((rec["config"], rec["threads"], rec["peer"]), []).append(rec)
    cells = {}
    for key, recs in by_cell.items():
        runners = {name: [r["runners"][name] for r in recs] for name in recs[0]["runners"]}
        medians = {name: statistics.median(v) for name, v in runners.items()}
        best = max(medians, key=medians.get)
        vals = runners[best]
        cells[key] = dict(value=medians[best], runner=best, runners=medians, rounds=vals,
                          spread=(max(vals) - min(vals)) / medians[best],
                          gflops=medians[best] * recs[0]["gflops_per_unit"],
                          foreign=max(r["foreign"] for r in recs),
                          disturbed=sum(r["foreign"] > max_foreign for r in recs),
                          notes=recs[0]["notes"], info=recs[0]["info"])
    errors = sorted({(r["config"], r["threads"], r["peer"], r["error"])
                     for r in records if "error" in r})
    return cells, errors


def fmt(v):
    return f"{v:,.1f}" if v < 100 else f"{float(f'{v:.3g}'):,.0f}"


def tables(args, cells, skips, errors):
    """Markdown: the rates with ratios to the best peer, GFLOP/s vs the BLAS peak, details."""
    shown = [p for p in args.peers if any(k[2] == p for k in cells)]
    missing = [p for p in args.peers if p not in shown]
    head = "| config | unit | threads | " + " | ".join(shown) + " |"
    out = [head, "|" + "---|" * (3 + len(shown))]
    for config in args.configs:
        for t in args.threads:
            row = {p: cells[(config, t, p)]["value"] for p in shown if (config, t, p) in cells}
            if not row:
                continue
            best = max(row.values())
            vals = [f"{fmt(row[p])} ({row[p] / best:.2f})" if p in row else "—" for p in shown]
            vals = [v + ("*" if cells.get((config, t, p), {}).get("disturbed") else "")
                    for v, p in zip(vals, shown)]
            out.append(f"| {config} | {CONFIGS[config]['unit']} | {t} | " + " | ".join(vals) + " |")
    out += ["", "Each cell: median rate (ratio to the best peer in the row; 1.00 = best). "
            "Higher is better; `infer_b1` samples/s = 1 / latency."]
    if any(c["disturbed"] for c in cells.values()):
        out.append("`*`: other processes kept using CPU through every retry of at least one "
                   "round of this cell (see the details).")

    peak = {t: cells[("gemm", t, "numpy")]["value"] for t in args.threads
            if ("gemm", t, "numpy") in cells}
    out += ["", "Achieved GFLOP/s (training 6 x weights per sample, inference 2 x)"
            + (", in brackets the share of NumPy's BLAS sgemm peak at the same thread count:"
               if peak else ":"), "",
            "| config | threads | BLAS peak | " + " | ".join(shown) + " |",
            "|" + "---|" * (3 + len(shown))]
    for config in args.configs:
        if CONFIGS[config]["kind"] == "gemm":
            continue
        for t in args.threads:
            vals = []
            for p in shown:
                c = cells.get((config, t, p))
                share = f" ({c['gflops'] / peak[t]:.0%})" if c and t in peak else ""
                vals.append(f"{c['gflops']:.1f}{share}" if c else "—")
            if any(v != "—" for v in vals):
                pk = f"{peak[t]:.0f}" if t in peak else "—"
                out.append(f"| {config} | {t} | {pk} | " + " | ".join(vals) + " |")

    out += ["", "<details><summary>Details: every runner, the rounds, notes</summary>", "",
            "| config | threads | peer | runner: median | rounds (best runner) | spread "
            "| foreign load |", "|---|---|---|---|---|---|---|"]
    notes = {}
    for (config, t, p), c in sorted(cells.items()):
        runs = ", ".join(f"{n}: {fmt(v)}" for n, v in c["runners"].items())
        rounds = ", ".join(fmt(v) for v in c["rounds"])
        out.append(f"| {config} | {t} | {p} | {runs} | {rounds} | {c['spread']:.0%} "
                   f"| {c['foreign']:.2f} |")
        for note in c["notes"]:
            notes.setdefault((p, note), []).append(config)
    out.append("")
    for (p, note), configs in notes.items():
        out.append(f"- {p} ({', '.join(sorted(set(configs)))}): {note}")
    skipped = {}
    for (p, config), reason in skips.items():
        if config in args.configs or config is None:
            skipped.setdefault((p, reason), []).append(config or "all")
    for (p, reason), configs in sorted(skipped.items()):
        whole = "all" in configs or len(configs) == len(args.configs)
        where = "" if whole else " on " + ", ".join(configs)
        out.append(f"- {p} skipped{where}: {reason}")
    for config, t, p, err in errors:
        out.append(f"- {p} failed on {config} at {t} thread(s): {err}")
    out += ["", "</details>"]
    return "\n".join(out), missing


def machine():
    """CPU model (family/model, AVX-512 or not), cores, memory, kernel, Python."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                key, _, val = ln.partition(":")
                info.setdefault(key.strip(), val.strip())
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2 ** 20:.0f} GiB RAM"
    except OSError:
        mem = "RAM unknown"
    cpu = info.get("model name", platform.processor() or "unknown CPU")
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']}, model {info.get('model')}"
        cpu += ", AVX-512)" if "avx512f" in info.get("flags", "").split() else ", no AVX-512)"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def header(args, records, cells, started, seconds, load):
    infos = {}
    for (_, _, p), c in cells.items():
        infos.setdefault(p, c["info"])
    versions = {k: v for info in infos.values() for k, v in info.items()
                if k in ("nativebp", "numpy", "torch", "sklearn")}
    blas = [b for info in infos.values() for b in info.get("blas", [])]
    np_blas = next((b for b in blas if b["user_api"] == "blas" and b["lib"] == "numpy.libs"), None)
    kernels = sorted({f"{b['internal_api']} {b['version']} in {b['lib']}, kernel "
                      f"{b['architecture']}, {b['threading_layer']}"
                      for b in blas if b["user_api"] == "blas"})
    torch_info = infos.get("torch", {})
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    driver_env = ", ".join(f"{v}={os.environ[v]}" for v in BLAS_ENV if v in os.environ)
    lines = [
        f"Command: `python bench/run.py{' ' + argv if argv else ''}` "
        f"({started:%Y-%m-%d %H:%M} UTC, took {seconds / 60:.1f} min)",
        f"Machine: {machine()}; load average {load:.2f} at start"
        + (" — **one core kept busy by a spinning process**" if args.busy else ""),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        "BLAS seen by threadpoolctl: " + ("; ".join(kernels) or "none"),
    ]
    if np_blas:
        lines.append(f"NumPy's BLAS: {np_blas['internal_api']} {np_blas['version']}, "
                     f"kernel {np_blas['architecture']}")
    if infos.get("nativebp", {}).get("nativebp_build"):
        lines.append(f"nativebp build: {infos['nativebp']['nativebp_build']}")
    if torch_info:
        lines.append(f"PyTorch: MKL {torch_info.get('torch_mkl')}, "
                     f"oneDNN {torch_info.get('torch_mkldnn')}")
    lines += [
        f"Threads: {', '.join(map(str, args.threads))}, set in each child by OMP_NUM_THREADS, "
        "OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and the library's API (torch.set_num_threads, "
        "threadpoolctl, nativebp.set_num_threads). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are "
        f"unset in the children (driver had: {driver_env or 'neither set'}).",
        f"Method: {args.rounds} round(s); per cell and round one fresh process: {args.warmup} s "
        f"warm-up, {args.windows} timed windows of {args.window} s, median window; the cell is "
        "the median over rounds; peers interleaved, order rotated each round.",
    ]
    if args.realtime:
        lines.append("Other processes: the measured processes ran under SCHED_RR (`--realtime`), "
                     "ahead of all others, which got only the cores a measurement left idle (at "
                     "1 thread the second core: shared caches and memory bandwidth remain); "
                     "foreign load per cell in the details.")
    elif args.priority:
        lines.append("Other processes: each measured process (and the spinner) ran in its own "
                     "scheduler group at nice -20 (`--priority`), so other sessions' processes "
                     "got little more than the cores a measurement left idle (at 1 thread the "
                     "second core: shared caches and memory bandwidth remain); foreign load per "
                     "cell in the details.")
    else:
        lines.append(f"Other processes: a measurement during which they used more than "
                     f"{args.max_foreign} cores is repeated after they go quiet (at most "
                     f"{args.retries} times); {sum(r['attempts'] > 1 for r in records)} of "
                     f"{len(records)} were repeated, "
                     f"{sum(r['foreign'] > args.max_foreign for r in records)} kept although "
                     "disturbed.")
    return "\n".join(f"- {ln}" for ln in lines)


def write_section(path, name, title, body):
    """Replace the section `name` of the markdown file, keeping the others."""
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    block = f"{start}\n## {title}\n\n{body}\n{end}"
    text = open(path).read() if os.path.exists(path) else (
        "# nativebp benchmark results\n\nWritten by `bench/run.py`; see bench/README.md for "
        "what the columns mean. Each section is replaced by the next run of its kind.\n")
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main(argv=None):
    args = parse_args(argv)
    started, t0, load = datetime.now(timezone.utc), time.time(), os.getloadavg()[0]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                            **own_group(args.priority)) if args.busy else None
    try:
        records, skips = measure_all(args, busy)
    finally:
        if busy:
            busy.terminate()
            busy.wait()
    seconds = time.time() - t0
    unchecked = args.realtime or args.priority  # others use the idle core: not a disturbance
    cells, errors = summarize(records, float("inf") if unchecked else args.max_foreign)
    body, missing = tables(args, cells, skips, errors)
    head = header(args, records, cells, started, seconds, load)
    mode = ("busy" if args.busy else "normal") + ("-quick" if args.quick else "")
    title = ("One core busy" if args.busy else "Normal load") + (" (quick)" if args.quick else "")
    if missing:
        title += f" — {', '.join(missing)} not measured"
    print(f"\n## {title}\n\n{head}\n\n{body}")
    os.makedirs(os.path.join(HERE, "_out"), exist_ok=True)
    with open(os.path.join(HERE, "_out", f"{mode}.json"), "w") as f:
        json.dump(records, f, indent=1)
    if not args.no_write:
        write_section(args.out, mode, title, f"{head}\n\n{body}")
        print(f"\nwrote {os.path.relpath(args.out)} (section '{mode}')", file=sys.stderr)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
