// Residual: y = x + f(x) around a block f whose output width equals its input width.
#pragma once
#include "sequential.hpp"

namespace nativebp {

template <typename T>
class Residual final : public Layer<T> {
 public:
  explicit Residual(std::vector<LayerPtr<T>> layers) : block_(std::move(layers)) {}
  std::string kind() const override { return "residual"; }
  const SequentialBlock<T>& block() const { return block_; }
  Index output_width(Index in) const override {
    const Index out = block_.output_width(in);
    if (out != in)
      throw ValueError("Residual: the block must keep the width, but maps " + std::to_string(in) + " to " +
                       std::to_string(out));
    width_ = in;
    return in;
  }
  std::vector<ParamInfo> params() const override { return prefixed(block_.params()); }
  std::vector<ParamInfo> states() const override { return prefixed(block_.states()); }
  void bind(T* p, T* g, T* s) override { block_.bind(p, g, s); }
  void reset_parameters(Rng& rng) override { block_.reset_parameters(rng); }
  void freeze_noise(bool f) override { block_.freeze_noise(f); }
  void set_collective(const Collective* c) override { block_.set_collective(c); }
  bool can_overwrite_grads() const override { return block_.can_overwrite_grads(); }
  void set_overwrite_grads(bool on) override { block_.set_overwrite_grads(on); }
  void reserve(Index batch) override { fx_.reserve(std::size_t(batch * width_)); block_.reserve(batch); }

  void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng& rng) override {
    MatMap<T> fx(fx_.reserve(std::size_t(X.size())), X.rows(), X.cols());
    block_.forward(X, fx, training, rng);
    Y = X + fx;
  }
  // dX = dY + J_f^T dY
  void backward(ConstMatMap<T> X, ConstMatMap<T>, ConstMatMap<T> dY, MatMap<T> dX) override {
    ConstMatMap<T> fx(fx_.data.data(), X.rows(), X.cols());
    block_.backward(X, fx, dY, dX);
    if (dX.data()) dX += dY;
  }

 private:
  static std::vector<ParamInfo> prefixed(std::vector<ParamInfo> v) {
    for (auto& p : v) p.name = "block." + p.name;
    return v;
  }
  SequentialBlock<T> block_;
  mutable Index width_ = 0;
  Scratch<T> fx_;
};

}  // namespace nativebp
