// A chain of layers run in order; it is itself a layer, so blocks nest (Residual holds one).
// It owns the activations between its layers and two ping-pong buffers for the backward pass.
#pragma once
#include <type_traits>

#include "../layer.hpp"
#include "activations.hpp"
#include "dense.hpp"

namespace nativebp {

template <typename T>
class SequentialBlock final : public Layer<T> {
 public:
  explicit SequentialBlock(std::vector<LayerPtr<T>> layers) : layers_(std::move(layers)) {
    fused_.assign(layers_.size(), nullptr);
    dense_.assign(layers_.size(), nullptr);
    tanh_.assign(layers_.size(), 0);
    if constexpr (std::is_same_v<T, float>)
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        dense_[i] = dynamic_cast<Dense<T>*>(layers_[i].get());
        tanh_[i] = dynamic_cast<Activation<T, TanhFn>*>(layers_[i].get()) != nullptr;
        if (i + 1 < layers_.size() && dynamic_cast<Activation<T, ReLUFn>*>(layers_[i + 1].get())) fused_[i] = dense_[i];
      }
  }
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
  void set_collective(const Collective* c) override { for (auto& l : layers_) l->set_collective(c); }
  bool can_overwrite_grads() const override {
    return std::all_of(layers_.begin(), layers_.end(), [](const LayerPtr<T>& l) { return l->can_overwrite_grads(); });
  }
  void set_overwrite_grads(bool on) override { for (auto& l : layers_) l->set_overwrite_grads(on); }

  void reserve(Index batch) override {
    if (batch <= capacity_) return;
    acts_.resize(layers_.empty() ? 0 : layers_.size() - 1);
    Index widest = widths_.empty() ? 0 : *std::max_element(widths_.begin(), widths_.end());
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) acts_[i].reserve(std::size_t(batch * widths_[i + 1]));
    for (auto& g : grad_) g.reserve(std::size_t(batch * widest));
    for (auto& l : layers_) l->reserve(batch);
    capacity_ = batch;  // only once every buffer is allocated: a bad_alloc must not leave it claimed
  }

  // A float32 Dense followed by a ReLU runs as one layer: the product's store applies the ReLU,
  // and the Dense's own output (acts_[i]) is never written (the ReLU's output gives the same
  // mask, A > 0 iff XW + b > 0). Saves a pass over the activations each way (tiny: 25%).
  void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng& rng) override {
    const Index n = X.rows();
    if (layers_.empty()) { Y = X; return; }
    const T* in = X.data();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      auto out_of = [&](std::size_t j) { return j + 1 == layers_.size() ? Y.data() : acts_[j].data.data(); };
      if constexpr (std::is_same_v<T, float>) {
        if (Dense<T>* d = fused_dense(i)) {
          d->forward_relu(ConstMatMap<T>(in, n, widths_[i]), MatMap<T>(out_of(i + 1), n, widths_[i + 2]));
          in = out_of(++i);
          continue;
        }
      }
      layers_[i]->forward(ConstMatMap<T>(in, n, widths_[i]), MatMap<T>(out_of(i), n, widths_[i + 1]), training, rng);
      in = out_of(i);
    }
  }

  // Walks the layers in reverse; the gradient between layers goes to whichever of two buffers
  // does not hold the incoming one. A Dense whose input is a fused ReLU's output, or a Tanh's
  // (not the first layer), passes the gradient through that activation in its own store, and
  // the activation's backward is skipped (deep, 8 x Tanh: 2% of a step).
  void backward(ConstMatMap<T> X, ConstMatMap<T> Y, ConstMatMap<T> dY, MatMap<T> dX) override {
    const Index n = X.rows();
    if (layers_.empty()) { if (dX.data()) dX = dY; return; }
    const T* grad_out = dY.data();
    int holding = -1;  // which grad_ buffer holds grad_out (-1: dY)
    for (std::size_t i = layers_.size(); i-- > 0;) {
      const T* in = i == 0 ? X.data() : acts_[i - 1].data.data();
      const T* out = i + 1 == layers_.size() ? Y.data() : acts_[i].data.data();
      const int next = holding == 0 ? 1 : 0;
      if constexpr (std::is_same_v<T, float>) {
        // Dense <- ReLU <- Dense (fused) or Dense <- Tanh <- any layer: skip the activation
        if (i >= 2 && dense_[i] && (fused_dense(i - 2) || tanh_[i - 1])) {
          T* grad_in = grad_[next].data.data();
          dense_[i]->backward_through_activation(ConstMatMap<T>(in, n, widths_[i]),
                                                 ConstMatMap<T>(grad_out, n, widths_[i + 1]),
                                                 MatMap<T>(grad_in, n, widths_[i - 1]), tanh_[i - 1] != 0);
          grad_out = grad_in;
          holding = next;
          --i;
          continue;
        }
      }
      if (i >= 1 && fused_dense(i - 1)) in = out;  // a fused ReLU: its input was not stored; the output masks alike
      T* grad_in = i == 0 ? dX.data() : grad_[next].data.data();
      layers_[i]->backward(ConstMatMap<T>(in, n, widths_[i]), ConstMatMap<T>(out, n, widths_[i + 1]),
                           ConstMatMap<T>(grad_out, n, widths_[i + 1]), MatMap<T>(grad_in, n, widths_[i]));
      grad_out = grad_in;
      holding = next;
    }
  }

 private:
  // Layer i if it is a float32 Dense followed by a ReLU (run fused), else null.
  Dense<T>* fused_dense(std::size_t i) const { return fused_[i]; }

  std::vector<ParamInfo> collect(std::vector<ParamInfo> (Layer<T>::*get)() const) const {
    std::vector<ParamInfo> out;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      for (auto p : ((*layers_[i]).*get)()) { p.name = std::to_string(i) + "." + p.name; out.push_back(p); }
    return out;
  }

  std::vector<LayerPtr<T>> layers_;
  std::vector<Dense<T>*> fused_;  // per layer: itself if a float32 Dense followed by a ReLU, else null
  std::vector<Dense<T>*> dense_;  // per layer: itself if a float32 Dense, else null
  std::vector<char> tanh_;        // per layer: a float32 Tanh
  mutable std::vector<Index> widths_;  // set by output_width(), which the network calls once at build
  std::vector<Scratch<T>> acts_;
  Scratch<T> grad_[2];
  Index capacity_ = 0;
};

}  // namespace nativebp
