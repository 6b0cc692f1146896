"""Digits end to end: train with a validation split, stop early, keep the best weights, evaluate
on the held-out test set, save, reload and predict. Run: ``python examples/digits.py``."""
import os
import tempfile

import numpy as np

import nativebp as nb

X, y, Xt, yt = nb.datasets.load_digits_split()      # fixed, stratified 1346 / 451 split
order = np.random.default_rng(0).permutation(len(X))
X, y = X[order], y[order]                           # validation_split takes the *last* rows: mix first
net = nb.Sequential([nb.Dense(64, 128, init="he_uniform"), nb.ReLU(), nb.Dropout(0.1),
                     nb.Dense(128, 64, init="he_uniform"), nb.ReLU(),
                     nb.Dense(64, 10)], seed=0)
opt = nb.optim.Adam(net, lr=1e-3)
hist = net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=100, batch_size=32,
               validation_split=0.15, metrics=["accuracy"], verbose=0,
               callbacks=[nb.callbacks.EarlyStopping("val_loss", patience=10, restore_best_weights=True),
                          nb.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=4)])
best = hist["val_loss"].index(min(hist["val_loss"]))
print(f"stopped after {len(hist)} epochs; best epoch {best + 1}: val_loss {hist['val_loss'][best]:.4f}, "
      f"val_accuracy {100 * hist['val_accuracy'][best]:.2f}%")
print("test:", {k: round(v, 4) for k, v in net.evaluate(Xt, yt).items()})

path = os.path.join(tempfile.mkdtemp(), "digits.nbp")
net.save(path)                                      # one file: architecture, weights, loss used
clf = nb.load(path)
proba = clf.predict_proba(Xt[:3])                   # softmax: the net was fit with cross_entropy
print("first test digits:", yt[:3].tolist(), "predicted:", proba.argmax(1).tolist(),
      "confidence:", [round(float(p), 3) for p in proba.max(1)])
