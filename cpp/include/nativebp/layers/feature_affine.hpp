// The per-feature affine map that ends BatchNorm1d and LayerNorm (torch's `affine` /
// `elementwise_affine`): y = xhat * gamma + beta, its parameters and its gradients.
#pragma once
#include <vector>

#include "../layer.hpp"

namespace nativebp {

template <typename T>
class FeatureAffine {
 public:
  FeatureAffine(Index features, bool enabled) : k_(features), enabled_(enabled) {}

  std::vector<ParamInfo> params() const {
    if (!enabled_) return {};
    return {{"weight", k_, 0, false}, {"bias", k_, 0, false}};
  }
  void bind(T* param, T* grad) {
    if (enabled_) { gamma_ = param; beta_ = param + k_; ggamma_ = grad; gbeta_ = grad + k_; }
  }
  void reset() {
    if (enabled_) for (Index j = 0; j < k_; ++j) { gamma_[j] = T(1); beta_[j] = T(0); }
  }

  // Y = xhat gamma + beta (Y = xhat when disabled)
  void forward(ConstMatMap<T> xhat, MatMap<T> Y) const {
    if (enabled_) Y.array() = (xhat.array().rowwise() * ConstVecMap<T>(gamma_, k_).array()).rowwise() +
                                ConstVecMap<T>(beta_, k_).array();
    else Y = xhat;
  }

  // dgamma += sum_rows(dY xhat), dbeta += sum_rows(dY); dXhat = dY gamma, written to dXhat when wanted
  void backward(ConstMatMap<T> dY, ConstMatMap<T> xhat, MatMap<T> dXhat) const {
    if (enabled_) {
      VecMap<T>(ggamma_, k_) += (dY.array() * xhat.array()).colwise().sum().matrix();
      VecMap<T>(gbeta_, k_) += dY.colwise().sum();
    }
    if (!dXhat.data()) return;
    if (enabled_) dXhat.array() = dY.array().rowwise() * ConstVecMap<T>(gamma_, k_).array();
    else dXhat = dY;
  }

 private:
  Index k_;
  bool enabled_;
  T *gamma_ = nullptr, *beta_ = nullptr, *ggamma_ = nullptr, *gbeta_ = nullptr;
};

}  // namespace nativebp
