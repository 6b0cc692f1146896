// A sum across the processes that share one batch (data-parallel replicas, e.g. over MPI): each
// passes its local partial sums and gets the global ones back, in place. Unset: one process, and
// the layers that use it (BatchNorm1d) take the batch they see as the whole batch.
#pragma once
#include <functional>

#include "tensor.hpp"

namespace nativebp {

class Collective {
 public:
  // Sums buf[0..n) over all processes, in place; every process must call it in the same order.
  using SumFn = std::function<void(double* buf, Index n)>;

  // Installs fn (empty: none) and returns the previous one, for the caller to destroy.
  SumFn set(SumFn fn) { std::swap(sum_, fn); return fn; }
  bool active() const { return bool(sum_); }
  void sum(double* buf, Index n) const { sum_(buf, n); }

 private:
  SumFn sum_;
};

}  // namespace nativebp
