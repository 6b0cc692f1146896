"""The benchmark configurations: the same networks, data sizes and optimizers for every peer.

Every config is float32 with synthetic data drawn from a fixed seed (make_data below); the
rows are a multiple of the batch size, so an epoch is a whole number of steps.
`kind` is "train", "infer" or "gemm"; `unit` names what the rate counts.
"""

MNIST = [784, 256, 128, 10]

CONFIGS = {
    # 10-64-2 regression, one full batch of 100 rows: the per-step overhead dominates.
    "tiny": dict(kind="train", sizes=[10, 64, 2], act="relu", loss="mse",
                 opt="sgd", lr=0.01, momentum=0.0, batch=100, rows=100, unit="steps/s"),
    "mnist": dict(kind="train", sizes=MNIST, act="relu", loss="cross_entropy",
                  opt="adam", lr=1e-3, batch=128, rows=4096, unit="samples/s"),
    "wide": dict(kind="train", sizes=[1024, 1024, 1024, 10], act="relu", loss="cross_entropy",
                 opt="sgd", lr=0.01, momentum=0.9, batch=256, rows=2048, unit="samples/s"),
    # 64 -> eight hidden layers of 64 -> 1
    "deep": dict(kind="train", sizes=[64] + [64] * 8 + [1], act="tanh", loss="mse",
                 opt="adam", lr=1e-3, batch=32, rows=4096, unit="samples/s"),
    # inference with the mnist network; at batch 1 the rate is 1 / latency
    "infer_b1": dict(kind="infer", sizes=MNIST, act="relu", loss="cross_entropy",
                     batch=1, rows=4096, unit="samples/s"),
    "infer_b1024": dict(kind="infer", sizes=MNIST, act="relu", loss="cross_entropy",
                        batch=1024, rows=4096, unit="samples/s"),
    # float32 n x n x n matrix product: the BLAS peak the other configs are measured against
    "gemm": dict(kind="gemm", n=2048, unit="GFLOP/s"),
}


def n_weights(cfg):
    """Multiply-adds of one forward pass per sample: the entries of all weight matrices."""
    s = cfg["sizes"]
    return sum(a * b for a, b in zip(s[:-1], s[1:]))


def gflop_per_unit(cfg):
    """GFLOP behind one unit of the config's rate.

    Training costs about 6 x weights per sample (forward 2, backward 2 for dX and 2 for dW),
    inference 2 x weights. `tiny` counts steps, so one unit is a whole batch.
    """
    if cfg["kind"] == "gemm":
        return 1.0
    per_sample = (6 if cfg["kind"] == "train" else 2) * n_weights(cfg) / 1e9
    return per_sample * (cfg["batch"] if cfg["unit"] == "steps/s" else 1)


def make_data(cfg, seed):
    """Synthetic float32 data from a small random teacher, identical in every peer."""
    import numpy as np  # here, not at the top: the driver imports this file without numpy

    rng = np.random.default_rng(seed)
    d_in, d_out = cfg["sizes"][0], cfg["sizes"][-1]
    X = rng.standard_normal((cfg["rows"], d_in), dtype=np.float32)
    teacher = rng.standard_normal((d_in, d_out), dtype=np.float32) / np.float32(d_in ** 0.5)
    if cfg["loss"] == "cross_entropy":
        y = np.argmax(X @ teacher, axis=1).astype(np.int64)
    else:
        y = np.tanh(X @ teacher).astype(np.float32)
    return X, y


def batches(X, y, batch):
    """Endless cycle over contiguous row slices (views, no copies) of the data."""
    n = X.shape[0] - X.shape[0] % batch
    while True:
        for i in range(0, n, batch):
            yield X[i:i + batch], (None if y is None else y[i:i + batch])
