"""Move a PyTorch model to nativebp and back, and export it to ONNX.

    python examples/torch_interop.py     (needs torch; ONNX part needs onnx + onnxruntime)
"""
import os
import tempfile

import numpy as np
import torch
from torch import nn

import nativebp as nb

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.1),
                      nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 10))

# 1. PyTorch model -> nativebp: same weights, same BatchNorm statistics, same outputs
net = nb.from_torch(model.eval())
X, y, Xt, yt = nb.datasets.load_digits_split()
with torch.no_grad():
    diff = np.abs(net.forward(Xt) - model(torch.from_numpy(Xt.astype(np.float32))).numpy()).max()
print(f"from_torch: {net.num_parameters():,} parameters, max output difference {diff:.1e}")

# 2. train it in nativebp's C++ engine
net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(net, lr=1e-3), epochs=20, batch_size=32, verbose=0)
print(f"after 20 epochs in nativebp: test accuracy {net.evaluate(Xt, yt, metrics=['accuracy'])['accuracy']:.3f}")

# 3. back to PyTorch: an nn.Sequential with the trained weights and the same state_dict keys
back = net.to_torch()
with torch.no_grad():
    accuracy = (back(torch.from_numpy(Xt.astype(np.float32))).argmax(1).numpy() == yt).mean()
print(f"to_torch: {type(back).__name__} with keys {list(back.state_dict())[:3]}..., test accuracy {accuracy:.3f}")

# 4. ONNX, run by onnxruntime
try:
    import onnxruntime as ort
except ImportError:
    print("onnxruntime not installed: skipping the ONNX export (pip install 'nativebp[onnx]')")
else:
    path = os.path.join(tempfile.gettempdir(), "digits.onnx")
    net.export_onnx(path)
    out = ort.InferenceSession(path).run(None, {"input": Xt.astype(np.float32)})[0]
    print(f"ONNX: {path}, onnxruntime vs net.predict max difference {np.abs(out - net.predict(Xt)).max():.1e}")
