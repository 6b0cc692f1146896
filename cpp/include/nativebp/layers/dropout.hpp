// Dropout (inverted): in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p); identity in inference.
#pragma once
#include "../layer.hpp"

namespace nativebp {

template <typename T>
class Dropout final : public Layer<T> {
 public:
  explicit Dropout(double p) : p_(p) {
    if (!(p >= 0.0 && p < 1.0)) throw ValueError("Dropout: p must be in [0, 1), got " + std::to_string(p));
  }
  std::string kind() const override { return "dropout"; }
  void reserve(Index batch) override { capacity_rows_ = batch; }
  void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng& rng) override {
    active_ = training && p_ > 0.0;
    if (!active_) { Y = X; return; }
    const Index n = X.size();
    T* m = mask_.reserve(std::size_t(n));
    if (!frozen_ || mask_size_ != n) {
      // Drawn serially from the network's generator: the same seed gives the same masks at any thread count.
      const T keep_scale = T(1.0 / (1.0 - p_));
      for (Index i = 0; i < n; ++i) m[i] = rng.uniform() >= p_ ? keep_scale : T(0);
      mask_size_ = n;
    }
    Y.array() = X.array() * ConstMatMap<T>(m, X.rows(), X.cols()).array();
  }
  // dx = dy * m / (1 - p)
  void backward(ConstMatMap<T>, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    if (!dX.data()) return;
    if (!active_) { dX = dY; return; }
    dX.array() = dY.array() * ConstMatMap<T>(mask_.data.data(), dY.rows(), dY.cols()).array();
  }
  void freeze_noise(bool frozen) override { frozen_ = frozen; }

 private:
  double p_;
  Scratch<T> mask_;
  Index mask_size_ = -1, capacity_rows_ = 0;
  bool active_ = false, frozen_ = false;
};

}  // namespace nativebp
