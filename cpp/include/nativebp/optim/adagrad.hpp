// Adagrad, as torch.optim.Adagrad (lr_decay, weight_decay, initial_accumulator_value, eps).
#pragma once
#include <cmath>

#include "optimizer.hpp"

namespace nativebp {

template <typename T>
class Adagrad final : public Optimizer<T> {
 public:
  double lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10;
  Adagrad(Index total, double lr_, double lr_decay_, double weight_decay_, double initial_acc, double eps_)
      : lr_decay(lr_decay_), weight_decay(weight_decay_), initial_accumulator_value(initial_acc), eps(eps_) {
    this->lr = lr_;
    this->allocate({"sum"}, total);
  }
  std::string kind() const override { return "adagrad"; }

 protected:
  double initial_value(const std::string&) const override { return initial_accumulator_value; }
  // g += wd p; s += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
  void update(T* p, const T* g, Index at, Index n, std::int64_t step) override {
    const T clr = T(this->lr / (1.0 + double(step - 1) * lr_decay)), wd = T(weight_decay), e = T(eps);
    T* s = this->buf("sum") + at;
    for_each_element(n, [&](Index i) {
      const T gi = g[i] + wd * p[i];
      s[i] += gi * gi;
      p[i] -= clr * gi / (std::sqrt(s[i]) + e);
    });
  }
};

}  // namespace nativebp
