// Row-major matrix aliases and views: numpy is C-ordered, so is the engine.
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace nativebp {

using Index = Eigen::Index;

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// A (rows x cols) view of a contiguous row-major buffer; data may be null for "not wanted".
template <typename T>
using MatMap = Eigen::Map<Matrix<T>>;
template <typename T>
using ConstMatMap = Eigen::Map<const Matrix<T>>;
template <typename T>
using VecMap = Eigen::Map<RowVector<T>>;
template <typename T>
using ConstVecMap = Eigen::Map<const RowVector<T>>;

// Raised for anything the caller got wrong; the bindings turn it into ValueError.
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A growable scratch buffer: resized only when a larger batch arrives, never shrunk,
// so the steady-state step does not allocate.
template <typename T>
struct Scratch {
  std::vector<T> data;
  T* reserve(std::size_t n) {
    if (data.size() < n) data.resize(n);
    return data.data();
  }
};

// Elementwise loops below this size stay on one thread: forking costs more than it gives.
constexpr Index kParallelThreshold = 1 << 15;

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Run f(first_row, row_count) over contiguous row ranges, one per thread when the work is large.
template <typename F>
void parallel_rows(Index rows, Index cols, F&& f) {
#ifdef _OPENMP
  if (rows * cols >= kParallelThreshold && rows > 1 && max_threads() > 1) {
#pragma omp parallel
    {
      const Index t = omp_get_thread_num(), nt = omp_get_num_threads();
      const Index r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
      if (r1 > r0) f(r0, r1 - r0);
    }
    return;
  }
#endif
  (void)cols;
  f(Index(0), rows);
}

}  // namespace nativebp
