// Bindings for the engine itself: the thread pool (also as C symbols, for threadpoolctl), the
// GEMM (for tests and the benchmark) and what this build was compiled for.
#include <nativebp/gemm.hpp>
#include <nativebp/simd.hpp>
#include <nativebp/threads.hpp>

#include "common.hpp"

// threadpoolctl finds the loaded engine library by these names (python/nativebp/_engine.py).
extern "C" {
__attribute__((visibility("default"))) int nativebp_get_num_threads() { return nativebp::threads::num_threads(); }
__attribute__((visibility("default"))) void nativebp_set_num_threads(int n) { nativebp::threads::set_num_threads(n); }
__attribute__((visibility("default"))) const char* nativebp_engine_variant() { return nativebp::simd::kIsa; }
}

namespace nativebp::bindings {

namespace {
using F32 = py::array_t<float, py::array::c_style>;

void check_2d(const F32& a, const char* what) {
  if (a.ndim() != 2) throw ValueError(std::string(what) + ": expected a 2-D float32 array");
}
}  // namespace

void bind_engine(py::module_& m) {
  m.def("set_num_threads", [](int n) {
    if (n < 1 || n > threads::Pool::kMaxThreads)
      throw ValueError("set_num_threads: n must be in [1, " + std::to_string(threads::Pool::kMaxThreads) + "], got " +
                       std::to_string(n));
    threads::set_num_threads(n);
  });
  m.def("get_num_threads", [] { return threads::num_threads(); });
  m.def("set_spin_us", [](int us) { threads::Pool::get().set_spin_us(us); },
        "How long idle workers spin before sleeping, in microseconds");
  m.def("get_spin_us", [] { return threads::Pool::get().spin_us(); });
  m.def("engine_variant", [] { return std::string(simd::kIsa); });
  m.def("pool_stalls", [] { return threads::Pool::get().stalls(); },
        "Jobs that waited on a late worker (its core busy) and made the pool run alone for a while");

  // C = op(A) op(B) (+ C) (+ bias), with the engine's float32 GEMM: for tests.
  m.def("sgemm",
        [](const F32& A, const F32& B, bool trans_a, bool trans_b, std::optional<F32> C, bool accumulate,
           std::optional<F32> bias) {
          check_2d(A, "A");
          check_2d(B, "B");
          const Index m = trans_a ? A.shape(1) : A.shape(0), k = trans_a ? A.shape(0) : A.shape(1);
          const Index kb = trans_b ? B.shape(1) : B.shape(0), n = trans_b ? B.shape(0) : B.shape(1);
          if (k != kb) throw ValueError("sgemm: inner dimensions differ: " + std::to_string(k) + " vs " + std::to_string(kb));
          F32 out = C ? *C : F32({py::ssize_t(m), py::ssize_t(n)});
          if (out.ndim() != 2 || out.shape(0) != m || out.shape(1) != n) throw ValueError("sgemm: C has the wrong shape");
          if (bias && (bias->ndim() != 1 || bias->shape(0) != n)) throw ValueError("sgemm: bias must have n entries");
          if (!C && accumulate) throw ValueError("sgemm: accumulate needs C");
          const float* bp = bias ? bias->data() : nullptr;
          float* cp = out.mutable_data();
          {
            py::gil_scoped_release release;
            gemm::sgemm(trans_a, trans_b, m, n, k, A.data(), A.shape(1), B.data(), B.shape(1), cp, n, accumulate, bp);
          }
          return out;
        },
        py::arg("A"), py::arg("B"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("C") = py::none(),
        py::arg("accumulate") = false, py::arg("bias") = py::none());

  // No NaN or infinity in a C-contiguous float32/float64 array: for the argument checks (_checks.py).
  m.def("all_finite", [](const py::array& a) {
    if (!(a.flags() & py::array::c_style)) throw ValueError("all_finite: expected a C-contiguous array");
    if (py::isinstance<py::array_t<float>>(a)) {
      const float* p = static_cast<const float*>(a.data());
      const Index n = Index(a.size());
      py::gil_scoped_release release;
      return all_finite(p, n);
    }
    if (py::isinstance<py::array_t<double>>(a)) {
      const double* p = static_cast<const double*>(a.data());
      const Index n = Index(a.size());
      py::gil_scoped_release release;
      return all_finite(p, n);
    }
    throw ValueError("all_finite: expected a float32 or float64 array");
  });

  // `repeats` products of n x n float32 matrices, kept between calls: for bench/ (gemm config).
  m.def("gemm_benchmark",
        [](Index n, Index repeats) {
          if (n < 1 || n > 16384) throw ValueError("gemm_benchmark: n must be in [1, 16384]");
          static std::vector<float> a, b, c;
          if (Index(a.size()) != n * n) {
            a.assign(std::size_t(n * n), 0.5f);
            b.assign(std::size_t(n * n), 0.25f);
            c.assign(std::size_t(n * n), 0.0f);
          }
          py::gil_scoped_release release;
          for (Index r = 0; r < repeats; ++r)
            gemm::sgemm(false, false, n, n, n, a.data(), n, b.data(), n, c.data(), n);
        },
        py::arg("n"), py::arg("repeats") = 1);
}

}  // namespace nativebp::bindings
