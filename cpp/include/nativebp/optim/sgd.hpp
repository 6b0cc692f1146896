// SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD.
#pragma once
#include "optimizer.hpp"

namespace nativebp {

template <typename T>
class SGD final : public Optimizer<T> {
 public:
  double momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  SGD(Index total, double lr_, double momentum_, double dampening_, double weight_decay_, bool nesterov_)
      : momentum(momentum_), dampening(dampening_), weight_decay(weight_decay_), nesterov(nesterov_) {
    this->lr = lr_;
    if (nesterov && (momentum <= 0 || dampening != 0))
      throw ValueError("SGD: nesterov momentum requires a momentum > 0 and zero dampening");
    if (momentum != 0) this->allocate({"momentum_buffer"}, total);
  }
  std::string kind() const override { return "sgd"; }

 protected:
  // g += wd p; b = t > 1 ? mu b + (1 - dampening) g : g; g = nesterov ? g + mu b : b; p -= lr g
  void update(T* p, const T* g, Index at, Index n, std::int64_t step) override {
    const T lr = T(this->lr), wd = T(weight_decay), mu = T(momentum), damp = T(1 - dampening);
    if (momentum == 0) {
      for_each_element(n, [&](Index i) { p[i] -= lr * (g[i] + wd * p[i]); });
      return;
    }
    T* b = this->buf("momentum_buffer") + at;
    const bool first = step == 1, nest = nesterov;
    for_each_element(n, [&](Index i) {
      const T gi = g[i] + wd * p[i];
      b[i] = first ? gi : mu * b[i] + damp * gi;
      p[i] -= lr * (nest ? gi + mu * b[i] : b[i]);
    });
  }
};

}  // namespace nativebp
