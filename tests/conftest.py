"""Shared helpers for the engine's correctness tests: seeded data, relative errors, and a record
of every gradient check's error, printed at the end of the run."""
import numpy as np
import pytest

import nativebp as nb

# (max relative error, test id) of every nb.gradcheck call made through `gradcheck_ok`.
GRADCHECK_ERRORS = []


def data(seed, *shape, scale=1.0):
    """Seeded standard-normal float64 array."""
    return scale * np.random.default_rng(seed).standard_normal(shape)


def rel_err(a, b):
    """max|a - b| / max|b|: one relative error for a whole array (0 when both are zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) if a.size else 0.0


def randomize_biases(net, seed):
    """Non-zero biases (the engine starts them at zero) so bias gradients matter."""
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        if p.name.endswith("bias"):
            p.value[...] = rng.uniform(-0.5, 0.5, p.value.shape)


@pytest.fixture
def gradcheck_ok(request):
    """Runs nb.gradcheck, records the error, and asserts every element of every parameter and of
    the input was checked and agrees to `tol`; also that the gradients are not all zero."""
    def check(net, X, y, loss="mse", delta=1.0, training=True, tol=1e-6):
        r = nb.gradcheck(net, X, y, loss=loss, delta=delta, training=training)
        GRADCHECK_ERRORS.append((r.max_error, request.node.nodeid))
        sizes = {p.name: p.value.size for p in net.parameters()}
        sizes["input"] = np.asarray(X).size
        assert {k: v[1] for k, v in r.per_tensor.items()} == sizes
        assert r.max_error <= tol, f"{r} per tensor {r.per_tensor}"
        if training:  # a check of all-zero gradients would prove nothing
            net.zero_grad()
            _, dx = net.loss_and_grad(X, y, loss=loss, delta=delta, return_input_grad=True)
            assert np.abs(dx).max() > 0 or any(np.abs(p.grad).max() > 0 for p in net.parameters())
            net.zero_grad()
        return r
    return check


def pytest_terminal_summary(terminalreporter):
    if GRADCHECK_ERRORS:
        worst = max(GRADCHECK_ERRORS)
        terminalreporter.write_line(f"gradcheck: {len(GRADCHECK_ERRORS)} checks, largest relative error "
                                    f"{worst[0]:.3g} in {worst[1]}")
