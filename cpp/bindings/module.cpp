// nativebp._core_<variant>: the compiled engine, built once per instruction set (CMakeLists.txt)
// and chosen at import by nativebp/_engine.py. Users import nativebp, never this module directly.
#include <Eigen/Core>

#include <nativebp/simd.hpp>

#include "common.hpp"

namespace nb = nativebp;

#ifndef NATIVEBP_MODULE
#define NATIVEBP_MODULE _core
#endif

PYBIND11_MODULE(NATIVEBP_MODULE, m) {
  m.doc() = "nativebp's C++ engine (private: use the nativebp package)";
  py::register_exception<nb::ValueError>(m, "EngineValueError", PyExc_ValueError);

  m.def("build_info", [] {
    py::dict d;
    d["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                 std::to_string(EIGEN_MINOR_VERSION);
    d["simd"] = std::string(Eigen::SimdInstructionSetsInUse());
    d["engine"] = std::string(nb::simd::kIsa);  // the variant: baseline, avx2, avx512 (or native)
    d["threads"] = std::string("nativebp pool");  // its own pool, not OpenMP (see threads.hpp)
    return d;
  });
  nb::bindings::bind_engine(m);
  nb::bindings::bind_network(m);
  nb::bindings::bind_optim(m);
}
