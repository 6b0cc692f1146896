"""Loads the engine build that fits this CPU and makes it ``nativebp._core``.

The C++ engine is compiled once per instruction set (``_core_baseline``: any x86-64;
``_core_avx2``: AVX2 + FMA; ``_core_avx512``: AVX-512; ``_core_native``: an opt-in
``-march=native`` build). The best one the CPU and OS support is imported; the environment
variable ``NATIVEBP_ENGINE`` (``baseline``, ``avx2``, ``avx512``, ``native``) forces one, as
faiss's ``FAISS_OPT_LEVEL`` does. ``nativebp.build_info()["engine"]`` says which one runs.

The engine's threads are its own pool (not OpenMP): ``nativebp.set_num_threads(n)``, the
``NATIVEBP_NUM_THREADS`` or ``OMP_NUM_THREADS`` environment variables at import, or
``threadpoolctl.threadpool_limits(n)`` (nativebp registers itself with threadpoolctl, under
``user_api="openmp"``, when threadpoolctl is installed).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

VARIANTS = ("native", "avx512", "avx2", "baseline")


def built():
    """The engine variants this installation has (editable installs keep them outside this folder)."""
    return [v for v in VARIANTS if importlib.util.find_spec(f"{__package__}._core_{v}") is not None]


def _choose():
    try:
        from . import _cpu
    except ImportError:  # a build from before the per-CPU variants: one module, nativebp._core
        return None
    supported = set(_cpu.supported())
    have = built()
    forced = os.environ.get("NATIVEBP_ENGINE", "").strip().lower()
    if forced and forced != "auto":
        if forced not in VARIANTS:
            raise ImportError(f"NATIVEBP_ENGINE={forced!r}: expected one of {', '.join(VARIANTS)} or 'auto'")
        if forced not in have:
            raise ImportError(f"NATIVEBP_ENGINE={forced!r}: this nativebp was built without that engine "
                              f"(built: {', '.join(have)})")
        if forced != "native" and forced not in supported:
            raise ImportError(f"NATIVEBP_ENGINE={forced!r}: this CPU does not support it "
                              f"(supported: {', '.join(_cpu.supported())})")
        return forced
    for v in VARIANTS:  # "native" was built for this machine on purpose: trusted when present
        if v in have and (v == "native" or v in supported):
            return v
    raise ImportError(f"nativebp: no engine build runs on this CPU (built: {', '.join(have)}; "
                      f"supported: {', '.join(_cpu.supported())})")


variant = _choose()
if variant is None:
    core = importlib.import_module(f"{__package__}._core")
else:
    core = importlib.import_module(f"{__package__}._core_{variant}")
    sys.modules[f"{__package__}._core"] = core  # `from nativebp import _core` gives the chosen engine
setattr(sys.modules[__package__], "_core", core)


def _register_threadpoolctl():
    """Lets threadpoolctl see and limit the engine's pool (when threadpoolctl is installed)."""
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return

    class NativebpController(threadpoolctl.LibController):
        user_api = "openmp"  # what it replaces: libraries limit OpenMP to avoid oversubscription
        internal_api = "nativebp"
        filename_prefixes = ("_core_",)
        check_symbols = ("nativebp_get_num_threads", "nativebp_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.nativebp_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.nativebp_set_num_threads(int(num_threads))

        def get_version(self):
            return None

        def set_additional_attributes(self):
            import ctypes
            self.dynlib.nativebp_engine_variant.restype = ctypes.c_char_p
            self.engine = self.dynlib.nativebp_engine_variant().decode()  # baseline, avx2, avx512

    threadpoolctl.register(NativebpController)


_register_threadpoolctl()
