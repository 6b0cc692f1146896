// The epoch loop in C++: shuffle with a seed, gather each batch into preallocated buffers,
// train_step, accumulate metrics. run() does a bounded number of batches so the caller
// (Python, with the GIL released meanwhile) can show progress and honour Ctrl-C in between.
#pragma once
#include <cstring>
#include <numeric>
#include <optional>

#include "metrics.hpp"
#include "network.hpp"

namespace nativebp {

template <typename T>
class Trainer {
 public:
  Trainer(Network<T>& net, Optimizer<T>& opt, std::vector<char> owned, const T* X, Index n, Target<T> y,
          Index y_cols, Loss loss, Index batch_size, bool shuffle, std::uint64_t seed, StepOptions options,
          MetricFlags flags)
      : net_(net), opt_(opt), owned_(std::move(owned)), X_(X), n_(n), y_(y), y_cols_(y_cols), loss_(loss),
        batch_(std::min(batch_size, n)), shuffle_(shuffle), rng_(seed), options_(options), flags_(flags) {
    if (batch_size < 1) throw ValueError("batch_size must be >= 1, got " + std::to_string(batch_size));
    order_.resize(std::size_t(n));
    std::iota(order_.begin(), order_.end(), Index(0));
    const Index in = net.in_features();
    xb_.reserve(std::size_t(batch_ * in));
    if (y.labels) lb_.reserve(std::size_t(batch_));
    else yb_.reserve(std::size_t(batch_ * y_cols));
    net.reserve(batch_);
  }

  Index batches_per_epoch() const { return (n_ + batch_ - 1) / batch_; }

  // A seed restarts the shuffle stream: seeding each epoch by its number makes a resumed run
  // draw the same batches as an uninterrupted one. Each epoch shuffles 0..n-1 afresh, so its
  // order depends on the generator's state alone, not on the epochs before it.
  void begin_epoch(std::optional<std::uint64_t> seed = std::nullopt) {
    if (seed) rng_.seed(*seed);
    pos_ = 0;
    totals_ = Totals{};
    if (shuffle_) {
      std::iota(order_.begin(), order_.end(), Index(0));
      rng_.shuffle(order_.data(), order_.size());
    }
  }
  const Totals& totals() const { return totals_; }

  // Trains on up to max_batches more batches of this epoch; returns true when the epoch is done
  // (or training diverged: a non-finite loss, after which the weights are left as they were).
  bool run(Index max_batches) {
    const Index in = net_.in_features();
    for (Index b = 0; b < max_batches && pos_ < n_; ++b) {
      const Index m = std::min(batch_, n_ - pos_);
      const T* xb;
      Target<T> yb;
      if (!shuffle_) {  // contiguous rows: no copy
        xb = X_ + pos_ * in;
        yb = y_.offset(pos_);
      } else {
        T* xdst = xb_.data.data();
        for (Index i = 0; i < m; ++i)
          std::memcpy(xdst + i * in, X_ + order_[std::size_t(pos_ + i)] * in, sizeof(T) * std::size_t(in));
        xb = xdst;
        yb = y_;
        if (y_.labels) {
          for (Index i = 0; i < m; ++i) lb_.data[std::size_t(i)] = y_.labels[order_[std::size_t(pos_ + i)]];
          yb.labels = lb_.data.data();
        } else {
          for (Index i = 0; i < m; ++i)
            std::memcpy(yb_.data.data() + i * y_cols_, y_.dense + order_[std::size_t(pos_ + i)] * y_cols_,
                        sizeof(T) * std::size_t(y_cols_));
          yb.dense = yb_.data.data();
        }
      }
      const double value = net_.train_step(xb, m, yb, loss_, opt_, owned_, options_);
      if (!std::isfinite(value)) { totals_.diverged = true; return true; }
      accumulate<T>(loss_, net_.last_output(m), yb, value, flags_, totals_);
      pos_ += m;
    }
    return pos_ >= n_;
  }

 private:
  Network<T>& net_;
  Optimizer<T>& opt_;
  std::vector<char> owned_;
  const T* X_;
  Index n_;
  Target<T> y_;
  Index y_cols_;
  Loss loss_;
  Index batch_;
  bool shuffle_;
  Rng rng_;
  StepOptions options_;
  MetricFlags flags_;
  std::vector<Index> order_;
  Scratch<T> xb_, yb_;
  Scratch<std::int64_t> lb_;
  Index pos_ = 0;
  Totals totals_;
};

// Inference-mode loss and metrics over X in batches.
template <typename T>
Totals evaluate(Network<T>& net, const T* X, Index n, const Target<T>& y, const Loss& loss, Index batch,
                MetricFlags flags) {
  Totals t;
  const Index in = net.in_features();
  batch = std::max<Index>(1, std::min(batch, n));
  for (Index pos = 0; pos < n; pos += batch) {
    const Index m = std::min(batch, n - pos);
    const Target<T> yb = y.offset(pos);
    const double value = net.loss_value(X + pos * in, m, yb, loss, false);
    accumulate<T>(loss, net.last_output(m), yb, value, flags, t);
  }
  return t;
}

}  // namespace nativebp
