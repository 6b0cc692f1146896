/* nativebp._cpu: which engine variants this CPU and OS can run. Compiled for any x86-64 (no
   flags), so importing it is always safe; nativebp/_engine.py asks it before loading a variant. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__clang__)
#define NATIVEBP_ISA_LEVELS (__clang_major__ >= 16)
#elif defined(__GNUC__)
#define NATIVEBP_ISA_LEVELS (__GNUC__ >= 12)
#else
#define NATIVEBP_ISA_LEVELS 0
#endif

/* Variants the CPU supports, best first; the compiler's check includes the OS saving the registers. */
static PyObject* supported(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  int avx2 = 0, avx512 = 0;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
#if NATIVEBP_ISA_LEVELS
  avx2 = __builtin_cpu_supports("x86-64-v3") != 0;
  avx512 = avx2 && __builtin_cpu_supports("x86-64-v4") != 0;
#else
  avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
#endif
#endif
  if (avx512) return Py_BuildValue("(sss)", "avx512", "avx2", "baseline");
  if (avx2) return Py_BuildValue("(ss)", "avx2", "baseline");
  return Py_BuildValue("(s)", "baseline");
}

static PyMethodDef methods[] = {
    {"supported", supported, METH_NOARGS, "Engine variants this CPU can run, best first."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu", "CPU feature check for nativebp's engine.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
