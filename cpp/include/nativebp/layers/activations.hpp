// The activation family: stateless elementwise (and row-wise softmax) layers.
// Each functor has forward(x, y) and backward(x, y, dy, dx) on row blocks; Activation<F> makes it a layer.
#pragma once
#include <cmath>

#include "../layer.hpp"

namespace nativebp {

template <typename T>
using CM = ConstMatMap<T>;
template <typename T>
using M = MatMap<T>;

struct IdentityFn {
  static constexpr const char* name = "identity";
  template <typename T> void forward(CM<T> x, M<T> y) const { y = x; }
  template <typename T> void backward(CM<T>, CM<T>, CM<T> dy, M<T> dx) const { dx = dy; }
};

struct ReLUFn {
  static constexpr const char* name = "relu";
  template <typename T> void forward(CM<T> x, M<T> y) const { y.array() = x.array().max(T(0)); }
  // dx = dy * [x > 0]; a plain loop: Eigen 3.4 does not vectorize select()
  template <typename T> void backward(CM<T> x, CM<T>, CM<T> dy, M<T> dx) const {
    const T* xp = x.data(); const T* g = dy.data(); T* o = dx.data();
    for (Index i = 0, n = x.size(); i < n; ++i) o[i] = xp[i] > T(0) ? g[i] : T(0);
  }
};

struct LeakyReLUFn {
  static constexpr const char* name = "leaky_relu";
  double alpha = 0.01;
  template <typename T> void forward(CM<T> x, M<T> y) const {
    y.array() = (x.array() > T(0)).select(x.array(), T(alpha) * x.array());
  }
  // dx = dy * (x > 0 ? 1 : alpha)
  template <typename T> void backward(CM<T> x, CM<T>, CM<T> dy, M<T> dx) const {
    dx.array() = (x.array() > T(0)).select(dy.array(), T(alpha) * dy.array());
  }
};

struct ELUFn {
  static constexpr const char* name = "elu";
  double alpha = 1.0;
  template <typename T> void forward(CM<T> x, M<T> y) const {
    y.array() = (x.array() > T(0)).select(x.array(), T(alpha) * (x.array().exp() - T(1)));
  }
  // dx = dy * (x > 0 ? 1 : y + alpha)
  template <typename T> void backward(CM<T> x, CM<T> y, CM<T> dy, M<T> dx) const {
    dx.array() = (x.array() > T(0)).select(dy.array(), dy.array() * (y.array() + T(alpha)));
  }
};

struct SELUFn {
  static constexpr const char* name = "selu";
  static constexpr double alpha = 1.6732632423543772848170429916717;
  static constexpr double scale = 1.0507009873554804934193349852946;
  template <typename T> void forward(CM<T> x, M<T> y) const {
    y.array() = T(scale) * (x.array() > T(0)).select(x.array(), T(alpha) * (x.array().exp() - T(1)));
  }
  // dx = dy * scale * (x > 0 ? 1 : alpha e^x) = dy * (x > 0 ? scale : y + scale*alpha)
  template <typename T> void backward(CM<T> x, CM<T> y, CM<T> dy, M<T> dx) const {
    dx.array() = (x.array() > T(0)).select(T(scale) * dy.array(), dy.array() * (y.array() + T(scale * alpha)));
  }
};

struct GELUFn {  // exact form, as torch.nn.GELU(approximate="none")
  static constexpr const char* name = "gelu";
  template <typename T> void forward(CM<T> x, M<T> y) const {
    const T* xp = x.data(); T* yp = y.data();
    for (Index i = 0, n = x.size(); i < n; ++i) yp[i] = T(0.5) * xp[i] * (T(1) + std::erf(xp[i] * T(M_SQRT1_2)));
  }
  // dx = dy * (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2)/sqrt(2 pi)
  template <typename T> void backward(CM<T> x, CM<T>, CM<T> dy, M<T> dx) const {
    const T* xp = x.data(); const T* g = dy.data(); T* o = dx.data();
    const T inv_sqrt_2pi = T(0.3989422804014327);
    for (Index i = 0, n = x.size(); i < n; ++i) {
      const T v = xp[i];
      o[i] = g[i] * (T(0.5) * (T(1) + std::erf(v * T(M_SQRT1_2))) + v * inv_sqrt_2pi * std::exp(T(-0.5) * v * v));
    }
  }
};

struct SigmoidFn {
  static constexpr const char* name = "sigmoid";
  template <typename T> void forward(CM<T> x, M<T> y) const { y.array() = x.array().logistic(); }
  // dx = dy * y (1 - y)
  template <typename T> void backward(CM<T>, CM<T> y, CM<T> dy, M<T> dx) const {
    dx.array() = dy.array() * y.array() * (T(1) - y.array());
  }
};

struct TanhFn {
  static constexpr const char* name = "tanh";
  template <typename T> void forward(CM<T> x, M<T> y) const { y.array() = x.array().tanh(); }
  // dx = dy * (1 - y^2)
  template <typename T> void backward(CM<T>, CM<T> y, CM<T> dy, M<T> dx) const {
    dx.array() = dy.array() * (T(1) - y.array().square());
  }
};

struct SoftplusFn {  // as torch.nn.Softplus(beta, threshold): linear where beta*x > threshold
  static constexpr const char* name = "softplus";
  double beta = 1.0, threshold = 20.0;
  // y = log(1 + exp(beta x)) / beta, computed as (max(bx, 0) + log1p(exp(-|bx|))) / beta
  template <typename T> void forward(CM<T> x, M<T> y) const {
    const T b = T(beta), th = T(threshold);
    const T* xp = x.data(); T* yp = y.data();
    for (Index i = 0, n = x.size(); i < n; ++i) {
      const T bx = b * xp[i];
      yp[i] = bx > th ? xp[i] : (std::max(bx, T(0)) + std::log1p(std::exp(-std::abs(bx)))) / b;
    }
  }
  // dx = dy * sigmoid(beta x)  (1 in the linear region)
  template <typename T> void backward(CM<T> x, CM<T>, CM<T> dy, M<T> dx) const {
    const T b = T(beta), th = T(threshold);
    const T* xp = x.data(); const T* g = dy.data(); T* o = dx.data();
    for (Index i = 0, n = x.size(); i < n; ++i) {
      const T bx = b * xp[i];
      o[i] = bx > th ? g[i] : g[i] / (T(1) + std::exp(-bx));
    }
  }
};

struct SiLUFn {
  static constexpr const char* name = "silu";
  template <typename T> void forward(CM<T> x, M<T> y) const { y.array() = x.array() * x.array().logistic(); }
  // dx = dy * s (1 + x (1 - s)), s = sigmoid(x)
  template <typename T> void backward(CM<T> x, CM<T>, CM<T> dy, M<T> dx) const {
    const auto s = x.array().logistic();
    dx.array() = dy.array() * s * (T(1) + x.array() * (T(1) - s));
  }
};

struct SoftmaxFn {  // row-wise, over the features of each sample
  static constexpr const char* name = "softmax";
  template <typename T> void forward(CM<T> x, M<T> y) const {
    y = (x.colwise() - x.rowwise().maxCoeff()).array().exp().matrix();
    y.array().colwise() /= y.array().rowwise().sum();
  }
  // dx = y * (dy - sum_j(dy_j y_j))
  template <typename T> void backward(CM<T>, CM<T> y, CM<T> dy, M<T> dx) const {
    dx.array() = y.array() * (dy.array().colwise() - (dy.array() * y.array()).rowwise().sum());
  }
};

template <typename T, typename F>
class Activation final : public Layer<T> {
 public:
  explicit Activation(F fn = F{}) : fn_(fn) {}
  std::string kind() const override { return F::name; }
  void forward(ConstMatMap<T> X, MatMap<T> Y, bool, Rng&) override {
    const Index k = X.cols();
    parallel_rows(X.rows(), k, [&](Index r, Index m) {
      fn_.template forward<T>(CM<T>(X.data() + r * k, m, k), M<T>(Y.data() + r * k, m, k));
    });
  }
  void backward(ConstMatMap<T> X, ConstMatMap<T> Y, ConstMatMap<T> dY, MatMap<T> dX) override {
    if (!dX.data()) return;
    const Index k = X.cols();
    parallel_rows(X.rows(), k, [&](Index r, Index m) {
      fn_.template backward<T>(CM<T>(X.data() + r * k, m, k), CM<T>(Y.data() + r * k, m, k),
                               CM<T>(dY.data() + r * k, m, k), M<T>(dX.data() + r * k, m, k));
    });
  }

 private:
  F fn_;
};

}  // namespace nativebp
