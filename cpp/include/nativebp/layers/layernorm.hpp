// LayerNorm over the features of each sample, as torch.nn.LayerNorm(num_features).
#pragma once
#include <cmath>

#include "../layer.hpp"
#include "feature_affine.hpp"

namespace nativebp {

template <typename T>
class LayerNorm final : public Layer<T> {
 public:
  LayerNorm(Index features, double eps, bool affine) : k_(features), eps_(eps), affine_(features, affine) {
    if (features < 1) throw ValueError("LayerNorm: num_features must be >= 1, got " + std::to_string(features));
    if (!(eps > 0)) throw ValueError("LayerNorm: eps must be > 0");
  }
  std::string kind() const override { return "layernorm"; }
  Index output_width(Index in) const override {
    if (in != k_)
      throw ValueError("LayerNorm(" + std::to_string(k_) + ") received input of width " + std::to_string(in));
    return k_;
  }
  std::vector<ParamInfo> params() const override { return affine_.params(); }
  void bind(T* param, T* grad, T*) override { affine_.bind(param, grad); }
  void reset_parameters(Rng&) override { affine_.reset(); }
  void reserve(Index batch) override { xhat_.reserve(std::size_t(batch * k_)); inv_std_.reserve(batch); }

  void forward(ConstMatMap<T> X, MatMap<T> Y, bool, Rng&) override {
    const Index n = X.rows();
    MatMap<T> xhat(xhat_.reserve(std::size_t(n * k_)), n, k_);
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> inv_std(inv_std_.reserve(n), n);
    xhat = X.colwise() - X.rowwise().mean();
    inv_std = ((xhat.array().square().rowwise().sum() / T(k_)) + T(eps_)).rsqrt();  // biased variance
    xhat.array().colwise() *= inv_std.array();
    affine_.forward(ConstMatMap<T>(xhat.data(), n, k_), Y);
  }

  // g = dY gamma; dX = inv_std (g - mean_j(g) - xhat mean_j(g xhat)), per row
  void backward(ConstMatMap<T>, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    const Index n = dY.rows();
    ConstMatMap<T> xhat(xhat_.data.data(), n, k_);
    Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> inv_std(inv_std_.data.data(), n);
    affine_.backward(dY, xhat, dX);
    if (!dX.data()) return;
    for (Index i = 0; i < n; ++i) {
      auto g = dX.row(i).array();
      const T mean_g = g.mean(), mean_gx = (g * xhat.row(i).array()).mean();
      g = (g - mean_g - xhat.row(i).array() * mean_gx) * inv_std(i);
    }
  }

 private:
  Index k_;
  double eps_;
  FeatureAffine<T> affine_;
  Scratch<T> xhat_, inv_std_;
};

}  // namespace nativebp
