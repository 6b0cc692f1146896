// Row-major matrix aliases and views: numpy is C-ordered, so is the engine.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "threads.hpp"

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

// Allocates on 64-byte boundaries (a cache line, an AVX-512 vector). Eigen's vectorised reductions
// start at the first aligned element, so their summation order follows a buffer's address mod 64:
// with every engine buffer aligned alike, equal inputs give bit-equal results in any copy of a network.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

// A contiguous, 64-byte aligned buffer: parameters, gradients, state, optimizer moments, scratch.
template <typename T>
using Buffer = std::vector<T, AlignedAllocator<T>>;

// A growable scratch buffer: resized only when a larger batch arrives, never shrunk,
// so the steady-state step does not allocate.
template <typename T>
struct Scratch {
  Buffer<T> data;
  T* reserve(std::size_t n) {
    if (data.size() < n) data.resize(n);
    return data.data();
  }
};

// Elementwise work below this many elements stays on one thread: the data was just written by
// the caller, and another core fetching it from there costs more than the work; above, it is
// split into tasks of about kTaskElements, several per thread so a late thread holds up little.
constexpr Index kParallelThreshold = 1 << 17;
constexpr Index kTaskElements = 1 << 13;

inline int max_threads() { return threads::num_threads(); }

// Run f(first_row, row_count) over contiguous row ranges, as pool tasks when the work is large.
// The ranges depend only on the sizes, never on the thread count.
template <typename F>
void parallel_rows(Index rows, Index cols, F&& f) {
  const Index tasks = rows * cols < kParallelThreshold ? 1 : std::min(rows, rows * cols / kTaskElements);
  if (tasks < 2 || max_threads() < 2) {
    f(Index(0), rows);
    return;
  }
  threads::parallel_for(tasks, [&](Index t) {
    const Index r0 = rows * t / tasks, r1 = rows * (t + 1) / tasks;
    if (r1 > r0) f(r0, r1 - r0);
  });
}

}  // namespace nativebp
