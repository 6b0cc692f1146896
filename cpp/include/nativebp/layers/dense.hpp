// Dense (fully connected): Y = X W + b, W of shape (in_features, out_features).
#pragma once
#include <type_traits>

#include "../gemm.hpp"
#include "../init.hpp"
#include "../layer.hpp"

namespace nativebp {

template <typename T>
class Dense final : public Layer<T> {
 public:
  Dense(Index in, Index out, bool bias, Init init, Init bias_init)
      : in_(in), out_(out), bias_(bias), init_(std::move(init)), bias_init_(std::move(bias_init)) {
    if (in < 1) throw ValueError("Dense: in_features must be >= 1, got " + std::to_string(in));
    if (out < 1) throw ValueError("Dense: out_features must be >= 1, got " + std::to_string(out));
    if (in > (Index(1) << 33) / out)  // checked before any size is multiplied out
      throw ValueError("Dense: " + std::to_string(in) + " x " + std::to_string(out) + " weights are too many to allocate");
  }
  std::string kind() const override { return "dense"; }
  Index output_width(Index in) const override {
    if (in != in_)
      throw ValueError("Dense(" + std::to_string(in_) + ", " + std::to_string(out_) + ") received input of width " +
                       std::to_string(in));
    return out_;
  }
  std::vector<ParamInfo> params() const override {
    std::vector<ParamInfo> p{{"weight", in_, out_, true}};
    if (bias_) p.push_back({"bias", out_, 0, false});
    return p;
  }
  void bind(T* param, T* grad, T*) override {
    w_ = param; gw_ = grad;
    if (bias_) { b_ = param + in_ * out_; gb_ = grad + in_ * out_; }
  }
  void reset_parameters(Rng& rng) override {
    initialize(w_, in_, out_, init_, rng);
    if (bias_) initialize(b_, 1, out_, bias_init_, rng);
  }

  bool can_overwrite_grads() const override { return true; }
  void set_overwrite_grads(bool on) override { overwrite_ = on; }

  // float32 runs on the engine's GEMM (bias added in its store); float64 (gradient checks) on Eigen.
  void forward(ConstMatMap<T> X, MatMap<T> Y, bool, Rng&) override {
    const Index n = X.rows();
    if constexpr (std::is_same_v<T, float>) {
      gemm::sgemm(false, false, n, out_, in_, X.data(), in_, w_, out_, Y.data(), out_, false, bias_ ? b_ : nullptr);
    } else {
      Y.noalias() = X * ConstMatMap<T>(w_, in_, out_);
      if (bias_) Y.rowwise() += ConstVecMap<T>(b_, out_);
    }
  }

  void backward(ConstMatMap<T> X, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    const Index n = X.rows();
    if constexpr (std::is_same_v<T, float>) {
      gemm::sgemm(true, false, in_, out_, n, X.data(), in_, dY.data(), out_, gw_, out_, !overwrite_);  // dL/dW (+)= X^T dY
      if (bias_) column_sums(dY.data(), n, out_, gb_, !overwrite_);                                  // dL/db (+)= sum_rows(dY)
      if (dX.data()) gemm::sgemm(false, true, n, in_, out_, dY.data(), out_, w_, out_, dX.data(), in_);  // dL/dX = dY W^T
    } else {
      MatMap<T> gw(gw_, in_, out_);
      if (overwrite_) gw.noalias() = X.transpose() * dY;  // dL/dW = X^T dY
      else gw.noalias() += X.transpose() * dY;
      if (bias_) {  // dL/db = sum_rows(dY)
        if (overwrite_) VecMap<T>(gb_, out_) = dY.colwise().sum();
        else VecMap<T>(gb_, out_) += dY.colwise().sum();
      }
      if (dX.data()) dX.noalias() = dY * ConstMatMap<T>(w_, in_, out_).transpose();  // dL/dX = dY W^T
    }
  }

  // float32 only (the network fuses a Dense followed by a ReLU; see SequentialBlock):
  // A = relu(X W + b) in one pass over the output; the pre-activation is not kept.
  void forward_relu(ConstMatMap<T> X, MatMap<T> A) {
    gemm::Epilogue ep;
    ep.bias = bias_ ? b_ : nullptr;
    ep.relu = true;
    gemm::sgemm(false, false, X.rows(), out_, in_, X.data(), in_, w_, out_, A.data(), out_, false, ep);
  }
  // backward() when X is the output of a ReLU, or of a Tanh (`tanh`): dL/dX is passed on through
  // it, dX = (dY W^T) * [X > 0], or dX = (dY W^T) * (1 - X^2) (tanh' from its output), the
  // activation's backward folded into this product's store.
  void backward_through_activation(ConstMatMap<T> X, ConstMatMap<T> dY, MatMap<T> dX, bool tanh) {
    const Index n = X.rows();
    if (bias_) column_sums(dY.data(), n, out_, gb_, !overwrite_);  // dL/db (+)= sum_rows(dY)
    if (gemm::fuses_narrow_backward(n, in_, out_))  // both products below in one pass over X
      return gemm::narrow_backward_through(n, in_, out_, X.data(), dY.data(), w_, gw_, !overwrite_, dX.data(), tanh);
    gemm::sgemm(true, false, in_, out_, n, X.data(), in_, dY.data(), out_, gw_, out_, !overwrite_);  // dL/dW (+)= X^T dY
    gemm::Epilogue ep;
    ep.mask = X.data();
    ep.ldm = in_;
    ep.tanh_mask = tanh;
    gemm::sgemm(false, true, n, in_, out_, dY.data(), out_, w_, out_, dX.data(), in_, false, ep);
  }

 private:
  // g[j] += sum_i d[i][j]: one SIMD vector of columns at a time, summed down the rows in four
  // sums side by side (rows i mod 4), so the adds do not wait on each other (tiny: 3% of a step).
  static void column_sums(const float* d, Index rows, Index cols, float* g, bool accumulate) {
    for (Index j = 0; j < cols; j += simd::W) {
      const int w = int(std::min<Index>(simd::W, cols - j));
      auto row = [&](Index i) { return w == simd::W ? simd::load(d + i * cols + j) : simd::load_part(d + i * cols + j, w); };
      simd::vf acc[4] = {simd::zero(), simd::zero(), simd::zero(), simd::zero()};
      Index i = 0;
      for (; i + 4 <= rows; i += 4)
        for (int u = 0; u < 4; ++u) acc[u] = simd::add(acc[u], row(i + u));
      for (; i < rows; ++i) acc[0] = simd::add(acc[0], row(i));
      const simd::vf sum = simd::add(simd::add(acc[0], acc[1]), simd::add(acc[2], acc[3]));
      simd::store_part(g + j, accumulate ? simd::add(sum, simd::load_part(g + j, w)) : sum, w);
    }
  }

  Index in_, out_;
  bool bias_;
  bool overwrite_ = false;  // backward stores the gradients instead of adding (a train step)
  Init init_, bias_init_;
  T *w_ = nullptr, *gw_ = nullptr, *b_ = nullptr, *gb_ = nullptr;
};

}  // namespace nativebp
