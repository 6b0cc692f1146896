// Losses and their gradients w.r.t. the network output Z, mean-reduced as in PyTorch:
// over all elements for mse/mae/huber/binary_cross_entropy, over samples for cross_entropy.
#pragma once
#include <cmath>
#include <string>

#include "tensor.hpp"

namespace nativebp {

enum class LossKind { MSE, MAE, Huber, BinaryCrossEntropy, CrossEntropy };

struct Loss {
  LossKind kind = LossKind::MSE;
  double delta = 1.0;  // huber
  static Loss parse(const std::string& name, double delta = 1.0) {
    Loss l;
    l.delta = delta;
    if (name == "mse") l.kind = LossKind::MSE;
    else if (name == "mae") l.kind = LossKind::MAE;
    else if (name == "huber") l.kind = LossKind::Huber;
    else if (name == "binary_cross_entropy" || name == "bce") l.kind = LossKind::BinaryCrossEntropy;
    else if (name == "cross_entropy") l.kind = LossKind::CrossEntropy;
    else
      throw ValueError("loss: expected one of 'mse', 'mae', 'huber', 'binary_cross_entropy', 'cross_entropy', got '" +
                       name + "'");
    if (l.kind == LossKind::Huber && !(delta > 0)) throw ValueError("loss: huber delta must be > 0");
    return l;
  }
};

// Targets: either integer class labels (cross_entropy only) or a dense matrix shaped like Z.
template <typename T>
struct Target {
  const T* dense = nullptr;
  const std::int64_t* labels = nullptr;
  Index stride = 0;  // row stride of dense (== Z.cols())
  Target offset(Index row) const {
    Target t = *this;
    if (dense) t.dense += row * stride;
    if (labels) t.labels += row;
    return t;
  }
};

// Returns the mean loss and, when dZ is not null, writes dL/dZ.
template <typename T>
double loss_and_grad(const Loss& loss, ConstMatMap<T> Z, const Target<T>& y, T* dZ) {
  const Index n = Z.rows(), k = Z.cols();
  double total = 0.0;
  if (loss.kind == LossKind::CrossEntropy) {
    // log-sum-exp with the row max subtracted: finite for any finite logits.
    const T inv_n = T(1.0 / double(n));
    for (Index i = 0; i < n; ++i) {
      const T* z = Z.data() + i * k;
      T zmax = z[0];
      for (Index j = 1; j < k; ++j) zmax = std::max(zmax, z[j]);
      T sum = 0;
      for (Index j = 0; j < k; ++j) sum += std::exp(z[j] - zmax);
      const T lse = zmax + std::log(sum);
      if (y.labels) {
        const std::int64_t c = y.labels[i];
        total += double(lse - z[c]);
        // dZ = (softmax(z) - onehot(c)) / n
        if (dZ) {
          T* g = dZ + i * k;
          for (Index j = 0; j < k; ++j) g[j] = std::exp(z[j] - lse) * inv_n;
          g[c] -= inv_n;
        }
      } else {
        const T* t = y.dense + i * k;
        T tsum = 0;
        for (Index j = 0; j < k; ++j) { total += double(t[j] * (lse - z[j])); tsum += t[j]; }
        // dZ = (softmax(z) * sum(t) - t) / n
        if (dZ) {
          T* g = dZ + i * k;
          for (Index j = 0; j < k; ++j) g[j] = (std::exp(z[j] - lse) * tsum - t[j]) * inv_n;
        }
      }
    }
    return total / double(n);
  }

  const Index m = n * k;
  const T inv_m = T(1.0 / double(m));
  const T* z = Z.data();
  const T* t = y.dense;
  switch (loss.kind) {
    case LossKind::MSE: {  // L = mean((z - t)^2), dZ = 2 (z - t) / m
      // four sums side by side (elements i mod 4): one would wait on the adder at every element
      double part[4] = {0, 0, 0, 0};
      Index i = 0;
      for (; i + 4 <= m; i += 4)
        for (int u = 0; u < 4; ++u) {
          const T d = z[i + u] - t[i + u];
          part[u] += double(d) * double(d);
          if (dZ) dZ[i + u] = T(2) * d * inv_m;
        }
      for (; i < m; ++i) {
        const T d = z[i] - t[i];
        part[0] += double(d) * double(d);
        if (dZ) dZ[i] = T(2) * d * inv_m;
      }
      total = (part[0] + part[1]) + (part[2] + part[3]);
      break;
    }
    case LossKind::MAE:  // L = mean|z - t|, dZ = sign(z - t) / m
      for (Index i = 0; i < m; ++i) {
        const T d = z[i] - t[i];
        total += std::abs(double(d));
        if (dZ) dZ[i] = T((d > 0) - (d < 0)) * inv_m;
      }
      break;
    case LossKind::Huber: {  // 0.5 d^2 if |d| < delta else delta (|d| - delta/2); dZ = clamp(d, -delta, delta) / m
      const T delta = T(loss.delta);
      for (Index i = 0; i < m; ++i) {
        const T d = z[i] - t[i], a = std::abs(d);
        total += a < delta ? 0.5 * double(d) * double(d) : double(delta) * (double(a) - 0.5 * double(delta));
        if (dZ) dZ[i] = std::max(-delta, std::min(delta, d)) * inv_m;
      }
      break;
    }
    case LossKind::BinaryCrossEntropy:  // L = mean(max(z,0) - z t + log1p(exp(-|z|))), dZ = (sigmoid(z) - t) / m
      for (Index i = 0; i < m; ++i) {
        const T v = z[i];
        total += double(std::max(v, T(0)) - v * t[i] + std::log1p(std::exp(-std::abs(v))));
        if (dZ) dZ[i] = (T(1) / (T(1) + std::exp(-v)) - t[i]) * inv_m;
      }
      break;
    default:
      break;
  }
  return total / double(m);
}

// Fraction of correct predictions: argmax for several outputs, z > 0 for binary_cross_entropy
// (elementwise, so multi-label too), and for one regression output round-to-nearest equality.
template <typename T>
double count_correct(const Loss& loss, ConstMatMap<T> Z, const Target<T>& y, double* denom) {
  const Index n = Z.rows(), k = Z.cols();
  double correct = 0;
  if (loss.kind == LossKind::BinaryCrossEntropy) {
    for (Index i = 0; i < n * k; ++i) correct += (Z.data()[i] > 0) == (y.dense[i] > T(0.5));
    *denom = double(n * k);
    return correct;
  }
  *denom = double(n);
  for (Index i = 0; i < n; ++i) {
    Index pred = 0;
    Z.row(i).maxCoeff(&pred);
    Index truth;
    if (y.labels) truth = Index(y.labels[i]);
    else if (k == 1) { correct += std::round(Z(i, 0)) == std::round(y.dense[i]); continue; }
    else ConstMatMap<T>(y.dense, n, k).row(i).maxCoeff(&truth);
    correct += pred == truth;
  }
  return correct;
}

}  // namespace nativebp
