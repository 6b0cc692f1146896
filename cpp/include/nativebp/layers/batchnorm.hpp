// BatchNorm1d, as torch.nn.BatchNorm1d: per-feature batch statistics in training, running
// statistics in inference; momentum weights the new batch statistic; running var is unbiased.
#pragma once
#include <cmath>

#include "../layer.hpp"
#include "feature_affine.hpp"

namespace nativebp {

template <typename T>
class BatchNorm1d final : public Layer<T> {
 public:
  BatchNorm1d(Index features, double eps, double momentum, bool affine)
      : k_(features), eps_(eps), momentum_(momentum), affine_(features, affine) {
    if (features < 1) throw ValueError("BatchNorm1d: num_features must be >= 1, got " + std::to_string(features));
    if (!(eps > 0)) throw ValueError("BatchNorm1d: eps must be > 0");
    if (!(momentum >= 0 && momentum <= 1)) throw ValueError("BatchNorm1d: momentum must be in [0, 1]");
  }
  std::string kind() const override { return "batchnorm1d"; }
  Index output_width(Index in) const override {
    if (in != k_)
      throw ValueError("BatchNorm1d(" + std::to_string(k_) + ") received input of width " + std::to_string(in));
    return k_;
  }
  std::vector<ParamInfo> params() const override { return affine_.params(); }
  std::vector<ParamInfo> states() const override {
    return {{"running_mean", k_, 0, false}, {"running_var", k_, 0, false}, {"num_batches_tracked", 1, 0, false}};
  }
  void bind(T* param, T* grad, T* state) override {
    affine_.bind(param, grad);
    rmean_ = state; rvar_ = state + k_; tracked_ = state + 2 * k_;
  }
  void reset_parameters(Rng&) override {
    affine_.reset();
    for (Index j = 0; j < k_; ++j) { rmean_[j] = T(0); rvar_[j] = T(1); }
    *tracked_ = T(0);
  }
  void set_collective(const Collective* c) override { collective_ = c; }
  void reserve(Index batch) override {
    xhat_.reserve(std::size_t(batch * k_)); mean_.reserve(k_); inv_std_.reserve(k_); tmp_.reserve(2 * k_);
    sums_.reserve(std::size_t(2 * k_ + 1));
  }

  void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng&) override {
    const Index n = X.rows();
    VecMap<T> mean(mean_.reserve(k_), k_), inv_std(inv_std_.reserve(k_), k_);
    MatMap<T> xhat(xhat_.reserve(std::size_t(n * k_)), n, k_);
    if (training) {
      VecMap<T> var(tmp_.reserve(2 * k_), k_);
      if (synced()) {
        count_ = global_moments(X, mean, xhat, var);
      } else {
        if (n < 2) throw ValueError("BatchNorm1d: training needs more than 1 sample per batch, got 1");
        mean = X.colwise().mean();
        xhat = X.rowwise() - mean;
        var = xhat.array().square().colwise().sum() / T(n);  // biased, used to normalise
        count_ = n;
      }
      inv_std = (var.array() + T(eps_)).rsqrt();
      const T m = T(momentum_);
      VecMap<T> rm(rmean_, k_), rv(rvar_, k_);
      rm = (T(1) - m) * rm + m * mean;
      rv = (T(1) - m) * rv + m * var * (T(count_) / T(count_ - 1));  // the running variance is unbiased
      *tracked_ += T(1);
    } else {
      mean = ConstVecMap<T>(rmean_, k_);
      inv_std = (ConstVecMap<T>(rvar_, k_).array() + T(eps_)).rsqrt();
      xhat = X.rowwise() - mean;
    }
    xhat.array().rowwise() *= inv_std.array();
    training_ = training;
    affine_.forward(ConstMatMap<T>(xhat.data(), n, k_), Y);
  }

  // dgamma = sum(dY xhat), dbeta = sum(dY), g = dY gamma;
  // training: dX = inv_std (g - mean(g) - xhat mean(g xhat)); inference: dX = g inv_std.
  // Synced: the means are over the global batch (sums over all replicas / N); dgamma and dbeta
  // stay this replica's sums (the gradient all-reduce adds them).
  void backward(ConstMatMap<T>, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    const Index n = dY.rows();
    ConstMatMap<T> xhat(xhat_.data.data(), n, k_);
    ConstVecMap<T> inv_std(inv_std_.data.data(), k_);
    affine_.backward(dY, xhat, dX);
    if (!dX.data()) return;
    if (training_) {
      VecMap<T> mean_g(tmp_.reserve(2 * k_), k_), mean_gx(tmp_.data.data() + k_, k_);
      if (synced()) {
        global_means(dX, xhat, mean_g, mean_gx);
      } else {
        mean_g = dX.colwise().mean();
        mean_gx = (dX.array() * xhat.array()).colwise().mean();
      }
      dX.array() = ((dX.rowwise() - mean_g).array() - xhat.array().rowwise() * mean_gx.array()).rowwise() *
                   inv_std.array();
    } else {
      dX.array().rowwise() *= inv_std.array();
    }
  }

 private:
  bool synced() const { return collective_ && collective_->active(); }

  // The global batch's mean and biased variance: the count and column sums are added over all
  // replicas, then the squared deviations from the global mean (two passes: stable). Returns N.
  Index global_moments(ConstMatMap<T> X, VecMap<T> mean, MatMap<T> xhat, VecMap<T> var) {
    Eigen::Map<RowVector<double>> sums(sums_.reserve(std::size_t(2 * k_ + 1)), k_ + 1);  // sized before: no allocation
    sums(0) = double(X.rows());
    sums.tail(k_) = X.template cast<double>().colwise().sum();
    collective_->sum(sums.data(), k_ + 1);
    const double N = sums(0);
    if (N < 2) throw ValueError("BatchNorm1d: training needs more than 1 sample per batch, got " +
                                std::to_string(Index(N)) + " over all replicas");
    mean = (sums.tail(k_) / N).template cast<T>();
    xhat = X.rowwise() - mean;
    sums.head(k_) = xhat.template cast<double>().array().square().colwise().sum();
    collective_->sum(sums.data(), k_);
    var = (sums.head(k_) / N).template cast<T>();
    return Index(N);
  }

  // mean(g) and mean(g xhat) over the global batch of count_ rows.
  void global_means(MatMap<T> g, ConstMatMap<T> xhat, VecMap<T> mean_g, VecMap<T> mean_gx) {
    Eigen::Map<RowVector<double>> sums(sums_.reserve(std::size_t(2 * k_ + 1)), 2 * k_);
    sums.head(k_) = g.template cast<double>().colwise().sum();
    sums.tail(k_) = (g.array() * xhat.array()).template cast<double>().colwise().sum();
    collective_->sum(sums.data(), 2 * k_);
    mean_g = (sums.head(k_) / double(count_)).template cast<T>();
    mean_gx = (sums.tail(k_) / double(count_)).template cast<T>();
  }

  Index k_;
  double eps_, momentum_;
  bool training_ = false;
  FeatureAffine<T> affine_;
  T *rmean_ = nullptr, *rvar_ = nullptr, *tracked_ = nullptr;
  Scratch<T> xhat_, mean_, inv_std_, tmp_;
  const Collective* collective_ = nullptr;  // the network's; synced when it is active
  Scratch<double> sums_;  // partial sums to reduce over the replicas: 2k + 1
  Index count_ = 0;  // rows of the last training batch (over all replicas when synced)
};

}  // namespace nativebp
