"""Plain NumPy mini-batch backprop: the peer that shows what the BLAS alone gives.

Row-major like nativebp: Y = X @ W + b with W of shape (in, out). All parameters live in one
flat float32 buffer and all gradients in another, so each optimizer step is a few whole-buffer
ufunc passes. Init and update rules follow PyTorch (nn.Linear init, SGD with momentum, Adam).
"""
import math

import numpy as np
from threadpoolctl import threadpool_limits

from configs import batches

_limits = None


def setup(threads):
    global _limits
    _limits = threadpool_limits(threads)  # kept alive: the limit holds for the process
    return {"numpy": np.__version__}


class MLP:
    def __init__(self, sizes, act, seed):
        rng = np.random.default_rng(seed)
        shapes = list(zip(sizes[:-1], sizes[1:]))
        total = sum(i * o + o for i, o in shapes)
        self.flat = np.empty(total, np.float32)
        self.grad = np.zeros(total, np.float32)
        self.W, self.b, self.gW, self.gb = [], [], [], []
        off = 0
        for i, o in shapes:
            for params, grads, shape in ((self.W, self.gW, (i, o)), (self.b, self.gb, (o,))):
                size = math.prod(shape)
                params.append(self.flat[off:off + size].reshape(shape))
                grads.append(self.grad[off:off + size].reshape(shape))
                off += size
            bound = 1.0 / math.sqrt(i)  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in))
            self.W[-1][...] = rng.uniform(-bound, bound, (i, o))
            self.b[-1][...] = rng.uniform(-bound, bound, o)
        self.act = act

    def forward(self, x):
        """Keep every layer's input for backward; the last layer is linear."""
        self.a = [x]
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = x @ W
            z += b
            if l < last and self.act == "relu":
                np.maximum(z, 0, out=z)
            elif l < last:
                np.tanh(z, out=z)
            self.a.append(z)
            x = z
        return x

    def backward(self, dy):
        """dW = a^T dY, db = sum_rows(dY), dX = dY W^T times the activation's derivative."""
        for l in range(len(self.W) - 1, -1, -1):
            a = self.a[l]
            np.matmul(a.T, dy, out=self.gW[l])
            np.sum(dy, axis=0, out=self.gb[l])
            if l == 0:
                break
            dy = dy @ self.W[l].T
            if self.act == "relu":
                dy *= a > 0                 # relu'(z) = [a > 0]
            else:
                dy *= 1 - a * a             # tanh'(z) = 1 - tanh(z)^2


def mse(out, target):
    diff = out - target
    return float(np.mean(diff * diff)), diff * np.float32(2.0 / diff.size)


def cross_entropy(logits, labels):
    """Softmax + NLL via log-sum-exp; gradient (softmax - onehot) / N."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = -float(np.mean(np.log(z[rows, labels])))
    z[rows, labels] -= 1
    z *= np.float32(1.0 / len(labels))
    return loss, z


class SGD:
    """PyTorch's SGD: buf = momentum * buf + g (buf = g at the first step); p -= lr * buf."""

    def __init__(self, net, lr, momentum=0.0):
        self.net, self.lr, self.momentum = net, lr, momentum
        self.buf, self.tmp = None, np.empty_like(net.flat)

    def step(self):
        g = self.net.grad
        if self.momentum:
            if self.buf is None:
                self.buf = g.copy()
            else:
                self.buf *= self.momentum
                self.buf += g
            g = self.buf
        np.multiply(g, self.lr, out=self.tmp)
        self.net.flat -= self.tmp


class Adam:
    """PyTorch's Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)."""

    def __init__(self, net, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.net, self.lr, (self.b1, self.b2), self.eps = net, lr, betas, eps
        self.m, self.v = np.zeros_like(net.flat), np.zeros_like(net.flat)
        self.tmp, self.t = np.empty_like(net.flat), 0

    def step(self):
        g, m, v, tmp = self.net.grad, self.m, self.v, self.tmp
        self.t += 1
        m *= self.b1
        np.multiply(g, 1 - self.b1, out=tmp)
        m += tmp
        v *= self.b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - self.b2 ** self.t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - self.b1 ** self.t)
        self.net.flat -= tmp


def runners(cfg, data, seed):
    if cfg["kind"] == "gemm":
        n = cfg["n"]
        rng = np.random.default_rng(seed)
        A, B = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        C = np.empty((n, n), np.float32)
        return {"matmul": (lambda: np.matmul(A, B, out=C), 2 * n ** 3 / 1e9)}, []

    X, y = data
    net = MLP(cfg["sizes"], cfg["act"], seed)
    it = batches(X, y, cfg["batch"])
    if cfg["kind"] == "infer":
        return {"forward": (lambda: net.forward(next(it)[0]), cfg["batch"])}, []

    loss_fn = mse if cfg["loss"] == "mse" else cross_entropy
    if cfg["opt"] == "adam":
        opt = Adam(net, lr=cfg["lr"])
    else:
        opt = SGD(net, lr=cfg["lr"], momentum=cfg["momentum"])

    def step():
        xb, yb = next(it)
        _, dy = loss_fn(net.forward(xb), yb)
        net.backward(dy)
        opt.step()

    units = 1 if cfg["unit"] == "steps/s" else cfg["batch"]
    return {"train_step": (step, units)}, []
