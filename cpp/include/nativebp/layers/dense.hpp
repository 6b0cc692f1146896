// Dense (fully connected): Y = X W + b, W of shape (in_features, out_features).
#pragma once
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

  void forward(ConstMatMap<T> X, MatMap<T> Y, bool, Rng&) override {
    ConstMatMap<T> W(w_, in_, out_);
    Y.noalias() = X * W;
    if (bias_) Y.rowwise() += ConstVecMap<T>(b_, out_);
  }

  void backward(ConstMatMap<T> X, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    ConstMatMap<T> W(w_, in_, out_);
    MatMap<T>(gw_, in_, out_).noalias() += X.transpose() * dY;  // dL/dW = X^T dY
    if (bias_) VecMap<T>(gb_, out_) += dY.colwise().sum();         // dL/db = sum_rows(dY)
    if (dX.data()) dX.noalias() = dY * W.transpose();              // dL/dX = dY W^T
  }

 private:
  Index in_, out_;
  bool bias_;
  Init init_, bias_init_;
  T *w_ = nullptr, *gw_ = nullptr, *b_ = nullptr, *gb_ = nullptr;
};

}  // namespace nativebp
