"""``net.summary()``: a Keras-style table of layers, output shapes and parameter counts.

>>> import nativebp as nb
>>> text = nb.Sequential([nb.Dense(4, 8), nb.ReLU(), nb.Dense(8, 2)]).summary(print_fn=None)
>>> print(text.splitlines()[4])
 0  Dense(4 -> 8)  (None, 8)          40
"""
from __future__ import annotations

from . import layers as L

__all__ = ["summary"]

def _describe(layer):
    if isinstance(layer, L.Dense):
        return f"Dense({layer.in_features} -> {layer.out_features_}{'' if layer.bias else ', no bias'})"
    if isinstance(layer, (L.BatchNorm1d, L.LayerNorm)):
        affine = layer.affine if isinstance(layer, L.BatchNorm1d) else layer.elementwise_affine
        return f"{type(layer).__name__}({layer.num_features}{'' if affine else ', no affine'})"
    if isinstance(layer, L.Residual):
        return "Residual (x + block(x))"
    return repr(layer)


def _rows(layers, width, prefix, depth, counts):
    """(index, description, output width, own parameter count) for each layer, nested blocks indented."""
    rows = []
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        width = layer.out_features(width)
        n = sum(size for name, size in counts.items() if name.startswith(path + "."))
        rows.append((path, "  " * depth + _describe(layer), width, n))
        if isinstance(layer, L.Residual):
            rows += _rows(layer.layers, width, f"{path}.block.", depth + 1, counts)
    return rows


def _table(rows):
    """Left-aligned columns, the last (counts) right-aligned, two spaces apart."""
    w = [max(len(str(r[c])) for r in rows) for c in range(4)]
    return [f" {a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d:>{w[3]}}" for a, b, c, d in rows]


def summary(net, print_fn=print):
    """The table for ``net`` as a string; also passed to ``print_fn`` unless it is None.

    Columns: layer index (``3.block.0`` inside a Residual), layer, output shape (``None`` is the
    batch) and parameter count; then totals, trainable/frozen split, memory, BatchNorm buffers.
    """
    params = net.parameters()
    counts = {p.name: p.value.size for p in params}
    rows = _rows(net.layers, net.in_features, "", 0, counts)
    total = sum(counts.values())
    trainable = sum(p.value.size for p in params if p.trainable)
    buffers = sum(v.size for v in net.buffers().values())
    itemsize = 4 if net.dtype == "float32" else 8
    head, *body = _table([("#", "Layer", "Output shape", "Param #")] +
                         [(i, d, f"(None, {w})", f"{n:,}") for i, d, w, n in rows])
    rule = "_" * max(len(head), 40)
    lines = [f"Sequential: {len(net.layers)} layers, input (None, {net.in_features}), {net.dtype}, seed {net.seed}",
             rule, head, "=" * len(rule), *body,
             "=" * len(rule), f"Total params: {total:,} ({_size(total * itemsize)})",
              f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}"]
    if buffers:
        lines.append(f"Buffers (BatchNorm running mean, variance, batch count): {buffers:,}")
    lines.append(rule)
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _size(nbytes):
    for unit in ("B", "KB", "MB"):
        if nbytes < 1024 or unit == "MB":
            return f"{nbytes:.2f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024
