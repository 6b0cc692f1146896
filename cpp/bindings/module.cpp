// nativebp._core: the compiled engine. Users import nativebp, never this module directly.
#include <Eigen/Core>

#include "common.hpp"

namespace nb = nativebp;

PYBIND11_MODULE(_core, m) {
  m.doc() = "nativebp's C++ engine (private: use the nativebp package)";
  py::register_exception<nb::ValueError>(m, "EngineValueError", PyExc_ValueError);

  m.def("set_num_threads", [](int n) {
    constexpr int kMaxThreads = 4096;  // beyond this OpenMP may fail to create threads and exit the process
    if (n < 1 || n > kMaxThreads)
      throw nb::ValueError("set_num_threads: n must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                           std::to_string(n));
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    Eigen::setNbThreads(n);
  });
  m.def("get_num_threads", [] { return nb::max_threads(); });
  m.def("build_info", [] {
    py::dict d;
    d["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                 std::to_string(EIGEN_MINOR_VERSION);
    d["simd"] = std::string(Eigen::SimdInstructionSetsInUse());
#ifdef _OPENMP
    d["openmp"] = _OPENMP;
#else
    d["openmp"] = 0;
#endif
    return d;
  });
  nb::bindings::bind_network(m);
  nb::bindings::bind_optim(m);
}
