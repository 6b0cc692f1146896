// A chain of layers run in order; it is itself a layer, so blocks nest (Residual holds one).
// It owns the activations between its layers and two ping-pong buffers for the backward pass.
#pragma once
#include "../layer.hpp"

namespace nativebp {

template <typename T>
class SequentialBlock final : public Layer<T> {
 public:
  explicit SequentialBlock(std::vector<LayerPtr<T>> layers) : layers_(std::move(layers)) {}
  std::string kind() const override { return "sequential"; }
  const std::vector<LayerPtr<T>>& layers() const { return layers_; }

  Index output_width(Index in) const override {
    widths_.assign(1, in);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      try {
        widths_.push_back(layers_[i]->output_width(widths_.back()));
      } catch (const ValueError& e) {
        throw ValueError("layer " + std::to_string(i) + " (" + layers_[i]->kind() + "): " + e.what());
      }
    }
    return widths_.back();
  }

  // Names are "<index>.<name>", as in torch's state_dict.
  std::vector<ParamInfo> params() const override { return collect(&Layer<T>::params); }
  std::vector<ParamInfo> states() const override { return collect(&Layer<T>::states); }

  void bind(T* param, T* grad, T* state) override {
    for (auto& l : layers_) {
      l->bind(param, grad, state);
      Index np = 0, ns = 0;
      for (auto& p : l->params()) np += p.size();
      for (auto& s : l->states()) ns += s.size();
      param += np; grad += np; state += ns;
    }
  }
  void reset_parameters(Rng& rng) override { for (auto& l : layers_) l->reset_parameters(rng); }
  void freeze_noise(bool f) override { for (auto& l : layers_) l->freeze_noise(f); }

  void reserve(Index batch) override {
    if (batch <= capacity_) return;
    acts_.resize(layers_.empty() ? 0 : layers_.size() - 1);
    Index widest = widths_.empty() ? 0 : *std::max_element(widths_.begin(), widths_.end());
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) acts_[i].reserve(std::size_t(batch * widths_[i + 1]));
    for (auto& g : grad_) g.reserve(std::size_t(batch * widest));
    for (auto& l : layers_) l->reserve(batch);
    capacity_ = batch;  // only once every buffer is allocated: a bad_alloc must not leave it claimed
  }

  void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng& rng) override {
    const Index n = X.rows();
    if (layers_.empty()) { Y = X; return; }
    const T* in = X.data();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      T* out = i + 1 == layers_.size() ? Y.data() : acts_[i].data.data();
      layers_[i]->forward(ConstMatMap<T>(in, n, widths_[i]), MatMap<T>(out, n, widths_[i + 1]), training, rng);
      in = out;
    }
  }

  // Walks the layers in reverse; the gradient between layers alternates between two buffers.
  void backward(ConstMatMap<T> X, ConstMatMap<T> Y, ConstMatMap<T> dY, MatMap<T> dX) override {
    const Index n = X.rows();
    if (layers_.empty()) { if (dX.data()) dX = dY; return; }
    const T* grad_out = dY.data();
    for (std::size_t i = layers_.size(); i-- > 0;) {
      const T* in = i == 0 ? X.data() : acts_[i - 1].data.data();
      const T* out = i + 1 == layers_.size() ? Y.data() : acts_[i].data.data();
      T* grad_in = i == 0 ? dX.data() : grad_[i % 2].data.data();
      layers_[i]->backward(ConstMatMap<T>(in, n, widths_[i]), ConstMatMap<T>(out, n, widths_[i + 1]),
                           ConstMatMap<T>(grad_out, n, widths_[i + 1]), MatMap<T>(grad_in, n, widths_[i]));
      grad_out = grad_in;
    }
  }

 private:
  std::vector<ParamInfo> collect(std::vector<ParamInfo> (Layer<T>::*get)() const) const {
    std::vector<ParamInfo> out;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      for (auto p : ((*layers_[i]).*get)()) { p.name = std::to_string(i) + "." + p.name; out.push_back(p); }
    return out;
  }

  std::vector<LayerPtr<T>> layers_;
  mutable std::vector<Index> widths_;  // set by output_width(), which the network calls once at build
  std::vector<Scratch<T>> acts_;
  Scratch<T> grad_[2];
  Index capacity_ = 0;
};

}  // namespace nativebp
