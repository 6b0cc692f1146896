// RMSprop, as torch.optim.RMSprop (alpha, eps, weight_decay, momentum, centered).
#pragma once
#include <cmath>

#include "optimizer.hpp"

namespace nativebp {

template <typename T>
class RMSprop final : public Optimizer<T> {
 public:
  double alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false;
  RMSprop(Index total, double lr_, double alpha_, double eps_, double weight_decay_, double momentum_, bool centered_)
      : alpha(alpha_), eps(eps_), weight_decay(weight_decay_), momentum(momentum_), centered(centered_) {
    this->lr = lr_;
    this->allocate({"square_avg"}, total);
    if (momentum > 0) this->allocate({"momentum_buffer"}, total);
    if (centered) this->allocate({"grad_avg"}, total);
  }
  std::string kind() const override { return "rmsprop"; }

 protected:
  // g += wd p; v = a v + (1 - a) g^2; centered: m = a m + (1 - a) g, v~ = v - m^2;
  // d = sqrt(v~) + eps; momentum: b = mu b + g / d, p -= lr b; else p -= lr g / d
  void update(T* p, const T* g, Index at, Index n, std::int64_t) override {
    const T lr = T(this->lr), a = T(alpha), e = T(eps), wd = T(weight_decay), mu = T(momentum);
    T* v = this->buf("square_avg") + at;
    T* m = centered ? this->buf("grad_avg") + at : nullptr;
    T* b = momentum > 0 ? this->buf("momentum_buffer") + at : nullptr;
    for_each_element(n, [&](Index i) {
      const T gi = g[i] + wd * p[i];
      v[i] = a * v[i] + (T(1) - a) * gi * gi;
      T var = v[i];
      if (m) { m[i] += (T(1) - a) * (gi - m[i]); var -= m[i] * m[i]; }
      const T d = std::sqrt(var) + e;
      if (b) { b[i] = mu * b[i] + gi / d; p[i] -= lr * b[i]; }
      else p[i] -= lr * gi / d;
    });
  }
};

}  // namespace nativebp
