"""PyTorch on CPU, written as a user would: nn.Sequential, a loss module, torch.optim."""
import torch
from torch import nn

from configs import batches


def setup(threads):
    torch.set_num_threads(threads)
    return {"torch": torch.__version__, "torch_mkl": torch.backends.mkl.is_available(),
            "torch_mkldnn": torch.backends.mkldnn.is_available(),
            "torch_threads": torch.get_num_threads()}


def build(sizes, act, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if act == "relu" else nn.Tanh())
    return nn.Sequential(*layers)


def runners(cfg, data, seed):
    if cfg["kind"] == "gemm":
        n = cfg["n"]
        g = torch.Generator().manual_seed(seed)
        A, B = (torch.randn(n, n, generator=g) for _ in range(2))
        C = torch.empty(n, n)
        return {"mm": (lambda: torch.mm(A, B, out=C), 2 * n ** 3 / 1e9)}, []

    X, y = (torch.from_numpy(a) for a in data)  # zero-copy
    net = build(cfg["sizes"], cfg["act"], seed)
    it = batches(X, y, cfg["batch"])
    if cfg["kind"] == "infer":
        net.eval()
        torch.set_grad_enabled(False)  # for the whole process, as inside one no_grad block
        return {"forward": (lambda: net(next(it)[0]), cfg["batch"])}, []

    loss_fn = nn.MSELoss() if cfg["loss"] == "mse" else nn.CrossEntropyLoss()
    if cfg["opt"] == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    else:
        opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])

    def step():
        xb, yb = next(it)
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xb), yb).backward()
        opt.step()

    units = 1 if cfg["unit"] == "steps/s" else cfg["batch"]
    return {"train_step": (step, units)}, [NOTE]


NOTE = "torch.optim defaults: on CPU a per-tensor loop (foreach and fused are off)"
