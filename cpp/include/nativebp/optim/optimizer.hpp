// The optimizer interface: one fused pass over each parameter tensor's slice of the flat
// buffers. Per-tensor step counts, as PyTorch keeps them, so frozen tensors do not advance.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "../tensor.hpp"

namespace nativebp {

struct Slice {
  Index offset = 0, size = 0;
};

template <typename T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string kind() const = 0;
  double lr = 1e-3;

  // Updates param[s] from grad[s] for each slice; `active[i]` false skips slice i (frozen).
  void step(T* param, const T* grad, const std::vector<Slice>& slices, const std::vector<char>& active) {
    if (steps_.size() != slices.size()) steps_.assign(slices.size(), 0);
    for (std::size_t i = 0; i < slices.size(); ++i) {
      if (!active[i]) continue;
      const Slice& s = slices[i];
      update(param + s.offset, grad + s.offset, s.offset, s.size, ++steps_[i]);
    }
  }

  // Moment buffers by name, each as long as the flat parameter buffer, plus per-tensor steps.
  std::map<std::string, Buffer<T>*> state() {
    std::map<std::string, Buffer<T>*> out;
    for (auto& kv : buffers_) out[kv.first] = &kv.second;
    return out;
  }
  std::vector<std::int64_t>& steps() { return steps_; }
  // True when every moment buffer spans `total` parameters (checked per step: no allocation).
  bool sized_for(Index total) const {
    for (auto& kv : buffers_)
      if (Index(kv.second.size()) != total) return false;
    return true;
  }
  void reset_state() {
    steps_.clear();
    for (auto& kv : buffers_) std::fill(kv.second.begin(), kv.second.end(), T(initial_value(kv.first)));
  }

 protected:
  // p, g point at one tensor; `at` is its offset into the flat buffers (for moment buffers).
  virtual void update(T* p, const T* g, Index at, Index n, std::int64_t step) = 0;
  virtual double initial_value(const std::string&) const { return 0.0; }
  T* buffer(const std::string& name, Index total) {
    auto& b = buffers_[name];
    if (Index(b.size()) != total) b.assign(std::size_t(total), T(initial_value(name)));
    return b.data();
  }
  void allocate(const std::vector<std::string>& names, Index total) { for (auto& n : names) buffer(n, total); }
  T* buf(const std::string& name) { return buffers_.at(name).data(); }

 private:
  std::map<std::string, Buffer<T>> buffers_;
  std::vector<std::int64_t> steps_;
};

// f(first, last) over contiguous ranges covering [0, n): pool tasks when large enough to pay.
template <typename F>
inline void for_each_range(Index n, F&& f) {
  const Index tasks = n < kParallelThreshold ? 1 : n / kTaskElements;
  if (tasks < 2 || max_threads() < 2) {
    f(Index(0), n);
    return;
  }
  threads::parallel_for(tasks, [&](Index t) { f(n * t / tasks, n * (t + 1) / tasks); });
}

// Elementwise loop over one tensor, split into pool tasks only when large enough to pay.
// f(i) touches element i only: ivdep lets the compiler vectorize through the captured pointers.
template <typename F>
inline void for_each_element(Index n, F&& f) {
  for_each_range(n, [&](Index i0, Index i1) {
#pragma GCC ivdep
    for (Index i = i0; i < i1; ++i) f(i);
  });
}

}  // namespace nativebp
