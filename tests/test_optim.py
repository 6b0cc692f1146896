"""Optimizers against numpy references of PyTorch's documented update rules (torch 2.x,
single-tensor), fed the same gradient sequence; plus frozen tensors, subsets, state round trips,
L1/L2 penalties and gradient clipping. Where torch is installed, the references are checked
against torch.optim too."""
import copy
import itertools

import numpy as np
import pytest

import nativebp as nb
from conftest import data, rel_err


# ------------------------------------------------------------------------------------ references
def sgd(p, g, st, t, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    g = g + weight_decay * p
    if momentum:
        st["b"] = g.copy() if t == 1 else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def adagrad(p, g, st, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    clr = lr / (1 + (t - 1) * lr_decay)
    g = g + weight_decay * p
    st["s"] = st.get("s", np.full_like(p, initial_accumulator_value)) + g * g
    return p - clr * g / (np.sqrt(st["s"]) + eps)


def rmsprop(p, g, st, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    g = g + weight_decay * p
    st["v"] = alpha * st.get("v", 0 * p) + (1 - alpha) * g * g
    v = st["v"]
    if centered:
        ga = st.get("ga", 0 * p)
        st["ga"] = ga + (1 - alpha) * (g - ga)  # lerp(ga, g, 1 - alpha)
        v = v - st["ga"] ** 2
    d = np.sqrt(v) + eps
    if momentum > 0:
        st["b"] = momentum * st.get("b", 0 * p) + g / d
        return p - lr * st["b"]
    return p - lr * g / d


def adam(p, g, st, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = st.get("m", 0 * p)
    st["m"] = m + (1 - b1) * (g - m)  # lerp(m, g, 1 - b1)
    st["v"] = b2 * st.get("v", 0 * p) + (1 - b2) * g * g
    v = st["v"]
    if amsgrad:
        st["vmax"] = v = np.maximum(st.get("vmax", 0 * p), v)
    return p - lr / (1 - b1 ** t) * st["m"] / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)


def adamw(p, g, st, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    return adam(p, g, st, t, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


REFERENCES = {"SGD": sgd, "Adagrad": adagrad, "RMSprop": rmsprop, "Adam": adam, "AdamW": adamw}


class Reference:
    """Per-tensor state and step counts, as torch keeps them (a skipped tensor does not advance)."""

    def __init__(self, kind, params, **hyper):
        self.fn, self.hyper = REFERENCES[kind], hyper
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.states, self.steps = [{} for _ in params], [0] * len(params)

    def step(self, grads, active=None):
        for i, g in enumerate(grads):
            if active is None or active[i]:
                self.steps[i] += 1
                self.params[i] = self.fn(self.params[i], g, self.states[i], self.steps[i], **self.hyper)


def _grid(**axes):
    return [dict(zip(axes, vals)) for vals in itertools.product(*axes.values())]


CONFIGS = (
    [("SGD", dict(lr=0.1, **c)) for c in _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.5], nesterov=[False, True],
                                               weight_decay=[0.0, 0.1])
     if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))]
    + [("Adagrad", dict(lr=0.1, **c)) for c in _grid(lr_decay=[0.0, 0.1], weight_decay=[0.0, 0.1],
                                                     initial_accumulator_value=[0.0, 0.5], eps=[1e-10, 1e-2])]
    + [("RMSprop", dict(lr=0.01, **c)) for c in _grid(alpha=[0.99, 0.8], momentum=[0.0, 0.9], centered=[False, True],
                                                      weight_decay=[0.0, 0.1])]
    + [("RMSprop", dict(lr=0.01, eps=1e-3))]
    + [("Adam", dict(lr=0.05, **c)) for c in _grid(betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-2],
                                                   weight_decay=[0.0, 0.1], amsgrad=[False, True])]
    + [("AdamW", dict(lr=0.05, **c)) for c in _grid(weight_decay=[0.0, 0.01, 0.5], amsgrad=[False, True],
                                                    betas=[(0.9, 0.999), (0.5, 0.8)])]
)
DEFAULTS = [("SGD", {}), ("Adagrad", {}), ("RMSprop", {}), ("Adam", {}), ("AdamW", {})]


def _id(kind, hyper):
    return kind + "".join(f"-{k}={v}" for k, v in hyper.items() if k != "lr").replace(" ", "")


def make_net(seed=0):
    return nb.Sequential([nb.Dense(3, 5), nb.Tanh(), nb.Dense(5, 2)], dtype="float64", seed=seed)


def gradient_sequence(net, opt, steps, active=None):
    """Runs `steps` of loss_and_grad + opt.step() on fresh batches whose scale shrinks and grows
    (so amsgrad's running max matters); returns the gradients the optimizer saw."""
    seen = []
    for s in range(steps):
        scale = 2.0 if s % 7 < 3 else 0.3
        X, y = data(100 + s, 6, 3, scale=scale), data(200 + s, 6, 2)
        net.zero_grad()
        net.loss_and_grad(X, y)
        seen.append([p.grad.copy() for p in net.parameters()])
        opt.step()
    return seen


@pytest.mark.parametrize("kind,hyper", CONFIGS + DEFAULTS, ids=[_id(k, h) for k, h in CONFIGS + DEFAULTS])
def test_optimizer_trajectory_matches_torch_rule(kind, hyper):
    net = make_net()
    ref = Reference(kind, [p.value for p in net.parameters()], **hyper)
    opt = getattr(nb.optim, kind)(net, **hyper)
    start = [p.value.copy() for p in net.parameters()]
    for grads in gradient_sequence(net, opt, 20):
        ref.step(grads)
    for p, r, s in zip(net.parameters(), ref.params, start):
        assert rel_err(p.value, r) <= 1e-10, p.name
        assert rel_err(p.value, s) > 1e-3  # it moved
    assert list(opt.state_dict()["steps"]) == [20] * len(start)


@pytest.mark.parametrize("kind,hyper", CONFIGS[::3], ids=[_id(k, h) for k, h in CONFIGS[::3]])
def test_optimizer_trajectory_matches_at_every_step(kind, hyper):
    net = make_net(1)
    ref = Reference(kind, [p.value for p in net.parameters()], **hyper)
    opt = getattr(nb.optim, kind)(net, **hyper)
    for _ in range(20):
        ref.step(gradient_sequence(net, opt, 1)[0])
        assert max(rel_err(p.value, r) for p, r in zip(net.parameters(), ref.params)) <= 1e-12


def test_optimizer_defaults_are_torchs():
    expected = {"SGD": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
                "Adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10),
                "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
                "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False),
                "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)}
    net = make_net()
    for kind, d in expected.items():
        assert getattr(nb.optim, kind)(net).state_dict()["defaults"] == d


@pytest.mark.parametrize("hyper", [dict(nesterov=True), dict(nesterov=True, momentum=0.9, dampening=0.1)])
def test_sgd_nesterov_needs_momentum_and_no_dampening(hyper):
    with pytest.raises(ValueError, match="nesterov"):
        nb.optim.SGD(make_net(), **hyper)


def test_references_match_torch():
    """The numpy references above are PyTorch's rules: checked against torch.optim (foreach=False)
    on the same gradient sequence, for every configuration."""
    torch = pytest.importorskip("torch")
    for kind, hyper in CONFIGS + DEFAULTS:
        net = make_net()
        ref = Reference(kind, [p.value for p in net.parameters()], **hyper)
        tparams = [torch.tensor(p.value.copy(), requires_grad=True) for p in net.parameters()]
        topt = getattr(torch.optim, kind)(tparams, foreach=False, **hyper)
        for grads in gradient_sequence(net, nb.optim.SGD(net, lr=0.0), 20):
            ref.step(grads)
            for tp, g in zip(tparams, grads):
                tp.grad = torch.tensor(g)
            topt.step()
        for tp, r in zip(tparams, ref.params):
            assert rel_err(tp.detach().numpy(), r) <= 1e-12, (kind, hyper)


# ------------------------------------------------------------------------------------ what gets updated
ALL_KINDS = [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)), ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
             ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
             ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)), ("AdamW", dict(lr=0.05, weight_decay=0.5))]
KIND_IDS = [k for k, _ in ALL_KINDS]


@pytest.mark.parametrize("kind,hyper", ALL_KINDS, ids=KIND_IDS)
def test_frozen_parameters_are_not_updated(kind, hyper):
    net = make_net()
    frozen = net.parameters()[0]
    frozen.trainable = False
    before = [p.value.copy() for p in net.parameters()]
    opt = getattr(nb.optim, kind)(net, **hyper)
    X, y = data(0, 6, 3), data(1, 6, 2)
    for _ in range(4):
        net.train_step(X, y, optimizer=opt, l1=0.01, l2=0.01, clip_norm=0.5)
    gradient_sequence(net, opt, 2)
    np.testing.assert_array_equal(frozen.value, before[0])
    assert all(rel_err(p.value, b) > 1e-4 for p, b in zip(net.parameters()[1:], before[1:]))
    assert list(opt.state_dict()["steps"]) == [0, 6, 6, 6]


@pytest.mark.parametrize("kind,hyper", ALL_KINDS, ids=KIND_IDS)
def test_optimizer_of_a_subset_updates_only_that_subset(kind, hyper):
    net = make_net()
    before = [p.value.copy() for p in net.parameters()]
    opt = getattr(nb.optim, kind)(net.parameters()[2:], **hyper)
    X, y = data(0, 6, 3), data(1, 6, 2)
    net.train_step(X, y, optimizer=opt)
    gradient_sequence(net, opt, 2)
    for p, b in zip(net.parameters()[:2], before[:2]):
        np.testing.assert_array_equal(p.value, b)
    assert all(rel_err(p.value, b) > 1e-4 for p, b in zip(net.parameters()[2:], before[2:]))


def test_unfrozen_tensor_starts_its_own_step_count():
    """As in torch, a tensor that skipped steps has its own bias correction when it joins."""
    net = make_net()
    hyper = dict(lr=0.05, amsgrad=True)
    ref = Reference("Adam", [p.value for p in net.parameters()], **hyper)
    opt = nb.optim.Adam(net, **hyper)
    net.parameters()[0].trainable = False
    for grads in gradient_sequence(net, opt, 3):
        ref.step(grads, active=[False, True, True, True])
    net.parameters()[0].trainable = True
    for grads in gradient_sequence(net, opt, 5):
        ref.step(grads)
    assert list(opt.state_dict()["steps"]) == [5, 8, 8, 8]
    for p, r in zip(net.parameters(), ref.params):
        assert rel_err(p.value, r) <= 1e-12


# ------------------------------------------------------------------------------------ state round trip
@pytest.mark.parametrize("kind,hyper", ALL_KINDS + [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True))],
                         ids=KIND_IDS + ["SGD-nesterov"])
def test_state_dict_round_trip_continues_the_trajectory_exactly(kind, hyper):
    net = make_net()
    opt = getattr(nb.optim, kind)(net, **hyper)
    X, y = data(0, 6, 3), data(1, 6, 2)
    for _ in range(7):
        net.train_step(X, y, optimizer=opt)
    state, saved = opt.state_dict(), [p.value.copy() for p in net.parameters()]
    snapshot = copy.deepcopy(state)

    def continue_with(o, network):
        losses = [network.train_step(data(10 + s, 6, 3), y, optimizer=o) for s in range(7)]
        return losses, [p.value.copy() for p in network.parameters()]

    first = continue_with(opt, net)
    # the saved state is a copy, untouched by the steps after it
    for name, arr in snapshot["buffers"].items():
        np.testing.assert_array_equal(state["buffers"][name], arr)
    assert any(np.any(opt.state_dict()["buffers"][n] != a) for n, a in snapshot["buffers"].items())
    np.testing.assert_array_equal(opt.state_dict()["steps"], [14] * 4)
    # the same network rewound, with a new optimizer loaded from the state: bit for bit
    for p, v in zip(net.parameters(), saved):
        p.value[...] = v
    opt2 = getattr(nb.optim, kind)(net, **hyper)
    opt2.load_state_dict(state)
    second = continue_with(opt2, net)
    assert first[0] == second[0]
    for a, b in zip(first[1], second[1]):
        np.testing.assert_array_equal(a, b)
    # and into a copy of the network (a separate engine instance: equal to rounding)
    net3 = net.copy()
    for p, v in zip(net3.parameters(), saved):
        p.value[...] = v
    opt3 = getattr(nb.optim, kind)(net3, **hyper)
    opt3.load_state_dict(state)
    third = continue_with(opt3, net3)
    for a, b in zip(first[1], third[1]):
        assert rel_err(b, a) <= 1e-12


def test_fresh_optimizer_does_not_continue_the_trajectory():
    """The round trip above is not trivially true: without the state the steps differ."""
    net = make_net()
    opt = nb.optim.Adam(net, lr=0.05)
    X, y = data(0, 6, 3), data(1, 6, 2)
    for _ in range(3):
        net.train_step(X, y, optimizer=opt)
    net2 = net.copy()
    opt2 = nb.optim.Adam(net2, lr=0.05)
    net.train_step(X, y, optimizer=opt)
    net2.train_step(X, y, optimizer=opt2)
    assert rel_err(net2.parameters()[0].value, net.parameters()[0].value) > 1e-4


def test_load_state_dict_refuses_another_kind():
    net = make_net()
    with pytest.raises(ValueError, match="Adam"):
        nb.optim.SGD(net).load_state_dict(nb.optim.Adam(net).state_dict())


# ------------------------------------------------------------------------------------ penalties and clipping
def penalty_net():
    """Dense weights, biases, and norm scales (which take no penalty)."""
    return nb.Sequential([nb.Dense(3, 5), nb.BatchNorm1d(5), nb.Tanh(), nb.Dense(5, 4, bias=False), nb.LayerNorm(4),
                          nb.Dense(4, 2)], dtype="float64", seed=3)


def reference_grads(net, X, y, l1=0.0, l2=0.0):
    """Loss + penalty and gradients + penalty gradients, computed here from loss_and_grad."""
    net.zero_grad()
    value = net.loss_and_grad(X, y)
    grads = []
    for p in net.parameters():
        g = p.grad.copy()
        if p.is_weight:
            g += l1 * np.sign(p.value) + l2 * p.value
            value += l1 * np.abs(p.value).sum() + l2 / 2 * (p.value ** 2).sum()
        grads.append(g)
    return value, grads


@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.1), (0.03, 0.2)])
def test_l1_l2_penalties_match_numpy(l1, l2):
    net, X, y = penalty_net(), data(0, 6, 3), data(1, 6, 2)
    assert [p.name for p in net.parameters() if p.is_weight] == ["0.weight", "3.weight", "5.weight"]
    value, grads = reference_grads(net, X, y, l1, l2)
    before = [p.value.copy() for p in net.parameters()]
    got = net.train_step(X, y, optimizer=nb.optim.SGD(net, lr=0.1), l1=l1, l2=l2)
    assert got == pytest.approx(value, rel=1e-13)
    for p, b, g in zip(net.parameters(), before, grads):
        np.testing.assert_allclose(p.value, b - 0.1 * g, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("max_norm", [0.05, 1e6])
def test_clip_by_global_norm_matches_torch_formula(max_norm):
    net, X, y = penalty_net(), data(0, 6, 3), data(1, 6, 2)
    _, grads = reference_grads(net, X, y, l2=0.1)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    coef = min(1.0, max_norm / (norm + 1e-6))  # torch.nn.utils.clip_grad_norm_
    before = [p.value.copy() for p in net.parameters()]
    net.train_step(X, y, optimizer=nb.optim.SGD(net, lr=0.1), l2=0.1, clip_norm=max_norm)
    for p, b, g in zip(net.parameters(), before, grads):
        np.testing.assert_allclose(p.value, b - 0.1 * coef * g, rtol=1e-13, atol=1e-15)
    # and the stand-alone call, which returns the norm before clipping
    _, grads = reference_grads(net, X, y)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    assert net.clip_grad_norm(max_norm) == pytest.approx(norm, rel=1e-13)
    coef = min(1.0, max_norm / (norm + 1e-6))
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_allclose(p.grad, coef * g, rtol=1e-13, atol=1e-15)
    assert max_norm > 1 or np.sqrt(sum((p.grad ** 2).sum() for p in net.parameters())) == pytest.approx(max_norm,
                                                                                                      rel=1e-4)


def test_clip_by_value_matches_numpy():
    net, X, y = penalty_net(), data(0, 6, 3), data(1, 6, 2)
    _, grads = reference_grads(net, X, y, l1=0.01)
    assert max(np.abs(g).max() for g in grads) > 0.05 > min(np.abs(g).min() for g in grads)
    before = [p.value.copy() for p in net.parameters()]
    net.train_step(X, y, optimizer=nb.optim.SGD(net, lr=0.1), l1=0.01, clip_value=0.05)
    for p, b, g in zip(net.parameters(), before, grads):
        np.testing.assert_allclose(p.value, b - 0.1 * np.clip(g, -0.05, 0.05), rtol=1e-13, atol=1e-15)
    _, grads = reference_grads(net, X, y)
    net.clip_grad_value(0.02)
    for p, g in zip(net.parameters(), grads):
        np.testing.assert_array_equal(p.grad, np.clip(g, -0.02, 0.02))
