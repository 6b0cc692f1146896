"""nativebp, through its public API only (DESIGN.md section 3).

Three training runners: the per-step Python loop (`train_step`), the fused C++ epoch (`fit`) and
many steps per call (`train_steps`, batches in order); the best one is nativebp's figure, all
are shown in the details with the runner's name.
GEMM hook: if the engine exposes `nativebp._core.gemm_benchmark(n, repeats)` (runs `repeats`
float32 n x n @ n x n products on preallocated matrices with the engine's kernel and thread
count, GIL released), the `gemm` config times one call per repeat.
"""
import nativebp as nb

from configs import batches


def setup(threads):
    nb.set_num_threads(threads)
    info = {"nativebp": getattr(nb, "__version__", "unknown")}
    if hasattr(nb, "get_num_threads"):
        info["nativebp_threads"] = nb.get_num_threads()
    if hasattr(nb, "build_info"):  # compiler flags, SIMD, BLAS: worth keeping beside the numbers
        info["nativebp_build"] = str(nb.build_info())[:500]
    return info


def build(sizes, act, seed):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nb.Dense(a, b))
        if i < len(sizes) - 2:
            layers.append(nb.ReLU() if act == "relu" else nb.Tanh())
    return nb.Sequential(layers, dtype="float32", seed=seed)


def runners(cfg, data, seed):
    if cfg["kind"] == "gemm":
        core = getattr(nb, "_core", None)
        if not hasattr(core, "gemm_benchmark"):
            raise NotImplementedError("nativebp._core.gemm_benchmark(n, repeats) not exposed")
        n = cfg["n"]
        return {"gemm": (lambda: core.gemm_benchmark(n, 1), 2 * n ** 3 / 1e9)}, []

    X, y = data
    if cfg["kind"] == "infer":
        net = build(cfg["sizes"], cfg["act"], seed)
        it = batches(X, None, cfg["batch"])
        return {"forward": (lambda: net.forward(next(it)[0]), cfg["batch"])}, []

    def optimizer(net):
        if cfg["opt"] == "adam":
            return nb.optim.Adam(net, lr=cfg["lr"])
        return nb.optim.SGD(net, lr=cfg["lr"], momentum=cfg["momentum"])

    loss, batch = cfg["loss"], cfg["batch"]
    runs, notes = {}, []
    step_net = build(cfg["sizes"], cfg["act"], seed)
    step_opt = optimizer(step_net)
    it = batches(X, y, batch)

    def step():
        xb, yb = next(it)
        step_net.train_step(xb, yb, loss=loss, optimizer=step_opt)

    fit_net = build(cfg["sizes"], cfg["act"], seed)
    fit_opt = optimizer(fit_net)

    def epoch():
        fit_net.fit(X, y, loss=loss, optimizer=fit_opt, epochs=1, batch_size=batch,
                    shuffle=False, verbose=0)

    steps_net = build(cfg["sizes"], cfg["act"], seed)
    steps_opt = optimizer(steps_net)
    # train_steps: many steps per call, batch after batch in order, as the other runners; at
    # least 64 per call so that tiny's one-batch data set does not measure the call itself.
    n_steps = max(64, X.shape[0] // batch)

    def many():
        steps_net.train_steps(X, y, loss=loss, optimizer=steps_opt, steps=n_steps, batch_size=batch)

    steps_per_epoch = X.shape[0] // batch
    for name, fn, units in (("train_step", step, 1), ("fit", epoch, steps_per_epoch), ("train_steps", many, n_steps)):
        if hasattr(step_net, name):  # an engine still being written may lack one of them
            runs[name] = (fn, units if cfg["unit"] == "steps/s" else units * batch)
        else:
            notes.append(f"Sequential.{name} missing in this build: not measured")
    if not runs:
        raise NotImplementedError("nativebp.Sequential has neither train_step nor fit")
    return runs, notes
