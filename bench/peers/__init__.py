"""The peers: one short module each, with the same three functions.

    setup(threads) -> dict          set the thread count through the library's API; versions
    runners(cfg, data, seed)        -> ({name: (fn, units_per_call)}, notes)
                                    each fn does one step / epoch / forward / GEMM when called

A peer's figure is its best runner (nativebp has two: a Python train_step loop and fused fit).
"""
import importlib
import importlib.util

PACKAGES = {"nativebp": "nativebp", "numpy": "numpy", "torch": "torch", "sklearn": "sklearn"}

UNSUPPORTED = {
    ("sklearn", "gemm"): "scikit-learn has no GEMM of its own (it calls numpy's BLAS)",
}


def why_not(peer, config):
    """Why this peer cannot run this config (None if it can), decided without importing it."""
    if (peer, config) in UNSUPPORTED:
        return UNSUPPORTED[(peer, config)]
    if importlib.util.find_spec(PACKAGES[peer]) is None:
        return f"package '{PACKAGES[peer]}' is not installed in this Python"
    return None


def load(peer):
    return importlib.import_module(f"peers.{peer}_peer")
