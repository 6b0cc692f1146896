#!/usr/bin/env bash
# Builds nativebp._core with AddressSanitizer + UndefinedBehaviorSanitizer (-DNATIVEBP_SANITIZE=ON)
# into its own venv and build folder, then runs the test suite under them; any report aborts.
#   tools/sanitize.sh                 # the whole suite
#   tools/sanitize.sh tests/test_bad_inputs.py -x   # any pytest arguments
# NATIVEBP_ASAN_VENV / NATIVEBP_ASAN_BUILD override .venv-asan / build/asan; CXX picks the compiler
# whose libasan is preloaded (it must be the one CMake builds with).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NATIVEBP_ASAN_VENV:-.venv-asan}
build=${NATIVEBP_ASAN_BUILD:-build/asan}
cxx=${CXX:-c++}
# One engine variant (each costs minutes to compile with sanitizers): by default the one this CPU
# would run, so its instruction-set kernels are the ones checked; NATIVEBP_ASAN_VARIANT picks another.
variant=${NATIVEBP_ASAN_VARIANT:-$(python3 - <<'PY'
flags = set()
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
except OSError:
    pass
if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
    print("avx512")
elif {"avx2", "fma", "bmi2"} <= flags:
    print("avx2")
else:
    print("baseline")
PY
)}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q scikit-build-core pybind11 cmeel-eigen numpy pytest hypothesis
CXX=$cxx "$venv/bin/pip" install -q --no-build-isolation -e . -Cbuild-dir="$build" \
  -Ccmake.define.NATIVEBP_SANITIZE=ON -Ccmake.define.NATIVEBP_VARIANTS="$variant" -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.NATIVEBP_UNITY=OFF  # four translation units, compiled in parallel
export NATIVEBP_ENGINE=$variant

# The ASan runtime must come first among the process's libraries; python itself is not
# instrumented, so it is preloaded. So is libstdc++: python does not link it, and ASan's
# __cxa_throw interceptor must find it at start-up or the first C++ exception aborts.
# libubsan is linked by the module and loads with it.
asan=$("$cxx" -print-file-name=libasan.so)
stdcxx=$("$cxx" -print-file-name=libstdc++.so)
[ -e "$asan" ] || { echo "sanitize.sh: $cxx has no libasan.so" >&2; exit 2; }
export LD_PRELOAD="$asan $stdcxx"
core=$(ASAN_OPTIONS=detect_leaks=0 "$venv/bin/python" -c "import nativebp._core as c; print(c.__file__)")
ldd "$core" | grep -q libasan || { echo "sanitize.sh: $core is not built with ASan" >&2; exit 2; }
echo "sanitize.sh: running the tests on $core" >&2

# detect_leaks=0: CPython frees little at exit, so LeakSanitizer would drown in its allocations
# (leaks are tested by RSS in tests/test_memory.py, which skips itself here: ASan's quarantine
# holds freed memory). allocator_may_return_null=1: an impossible allocation must become
# std::bad_alloc -> MemoryError, as without ASan, instead of an ASan abort.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
