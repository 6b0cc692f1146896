"""Checkpoint and resume: training that is stopped after 3 epochs and resumed from its checkpoint
ends with the same weights, bit for bit, as training that ran 6 epochs straight (same seed and
thread count). The checkpoint holds the weights, the optimizer's moments and step counts, the
dropout generator and how many epochs were done. Run: ``python examples/resume.py``."""
import os
import tempfile

import numpy as np

import nativebp as nb

X, y, _, _ = nb.datasets.load_digits_split()
ckpt = os.path.join(tempfile.mkdtemp(), "run.nbp")


def new_run():
    net = nb.Sequential([nb.Dense(64, 64), nb.ReLU(), nb.Dropout(0.2), nb.Dense(64, 10)], seed=1)
    return net, nb.optim.SGD(net, lr=0.1, momentum=0.9)


def fit(net, opt, epochs, initial_epoch=0):
    schedule = nb.schedules.CosineAnnealingLR(T_max=6)          # per epoch, from opt.initial_lr
    save = nb.callbacks.ModelCheckpoint(ckpt)                   # every epoch, atomically
    net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, initial_epoch=initial_epoch,
            batch_size=32, verbose=0, callbacks=[schedule, save])


net, opt = new_run()
fit(net, opt, epochs=3)                                         # ... and then the machine goes down

done = nb.io.read_header(ckpt)["meta"]["epoch"]                 # 3
net, opt = nb.load(ckpt, with_optimizer=True)
fit(net, opt, epochs=6 - done, initial_epoch=done)

ref, ref_opt = new_run()
fit(ref, ref_opt, epochs=6)
same = all(np.array_equal(a.value, b.value) for a, b in zip(net.parameters(), ref.parameters()))
print(f"resumed at epoch {done}; weights identical to an uninterrupted run: {same}")
