// A compiled network: the layer tree, the flat parameter / gradient / state buffers, and the
// output buffers, sized once per batch size. Forward, loss, backward, penalties, clipping, step.
#pragma once
#include <cmath>
#include <limits>
#include <mutex>

#include "finite.hpp"
#include "layers/sequential.hpp"
#include "losses.hpp"
#include "optim/optimizer.hpp"

namespace nativebp {

// Penalties and clipping applied between backward and the optimizer step.
struct StepOptions {
  double l1 = 0, l2 = 0;       // penalty l1 sum|w| + l2/2 sum w^2 over weights (not biases)
  double clip_norm = 0;        // > 0: scale gradients so their global L2 norm is at most this
  double clip_value = 0;       // > 0: clamp each gradient to [-clip_value, clip_value]
};

// 2^33 parameters (32 GiB of float32) is more than any machine this runs on can train.
constexpr Index kMaxParameters = Index(1) << 33;

template <typename T>
class Network {
 public:
  Network(std::vector<LayerPtr<T>> layers, Index in_features, std::uint64_t seed)
      : root_(std::move(layers)), in_(in_features), rng_(seed) {
    if (in_features < 1) throw ValueError("in_features must be >= 1, got " + std::to_string(in_features));
    out_ = root_.output_width(in_);
    params_ = root_.params();
    states_ = root_.states();
    Index np = 0, ns = 0;
    for (auto& p : params_) { slices_.push_back({np, p.size()}); np += p.size(); }
    for (auto& s : states_) { state_offsets_.push_back(ns); ns += s.size(); }
    if (np > kMaxParameters)  // refuse before allocating, rather than exhaust memory
      throw ValueError("the network would have " + std::to_string(np) + " parameters, more than the limit of " +
                       std::to_string(kMaxParameters));
    param_.assign(std::size_t(np), T(0));
    grad_.assign(std::size_t(np), T(0));
    state_.assign(std::size_t(ns), T(0));
    trainable_.assign(params_.size(), 1);
    root_.bind(param_.data(), grad_.data(), state_.data());
    root_.set_collective(&collective_);
    root_.reset_parameters(rng_);
    overwrite_grads_ = root_.can_overwrite_grads();
  }

  Index in_features() const { return in_; }
  Index out_features() const { return out_; }
  const std::vector<ParamInfo>& param_info() const { return params_; }
  const std::vector<ParamInfo>& state_info() const { return states_; }
  const std::vector<Slice>& slices() const { return slices_; }
  const std::vector<Index>& state_offsets() const { return state_offsets_; }
  Buffer<T>& param() { return param_; }
  Buffer<T>& grad() { return grad_; }
  Buffer<T>& state() { return state_; }
  std::vector<char>& trainable() { return trainable_; }
  Rng& rng() { return rng_; }
  SequentialBlock<T>& root() { return root_; }
  std::mutex& mutex() { return mutex_; }

  // Data-parallel training: `sum` adds partial sums over all replicas in place, so batch
  // statistics (BatchNorm1d) are those of the global batch. An empty function: one process.
  // Returns the previous function.
  Collective::SumFn set_allreduce(Collective::SumFn sum) { return collective_.set(std::move(sum)); }
  bool distributed() const { return collective_.active(); }

  void reserve(Index batch) {
    if (batch <= capacity_) return;
    root_.reserve(batch);
    out_buf_.reserve(std::size_t(batch * out_));
    dout_buf_.reserve(std::size_t(batch * out_));
    capacity_ = batch;  // only once every buffer is allocated: a bad_alloc must not leave it claimed
  }

  // Output of a forward pass over n rows of X; valid until the next call.
  ConstMatMap<T> forward(const T* X, Index n, bool training) {
    reserve(std::max<Index>(n, 1));  // an empty batch (a replica without rows) still needs the buffers
    MatMap<T> out(out_buf_.data.data(), n, out_);
    root_.forward(ConstMatMap<T>(X, n, in_), out, training, rng_);
    return ConstMatMap<T>(out.data(), n, out_);
  }

  // The output of the last forward over n rows.
  ConstMatMap<T> last_output(Index n) const { return ConstMatMap<T>(out_buf_.data.data(), n, out_); }

  // Training-mode forward and backward: accumulates into grad() and, if dX is not null, writes dL/dX.
  // Returns the mean loss over the n rows. grad_scale multiplies dL/dZ: a replica holding n of the
  // global batch's N rows passes n/N, so the replicas' gradients sum to the global mean's.
  // n == 0 (a replica with no rows this step) only takes part in the collectives; returns 0.
  double loss_and_grad(const T* X, Index n, const Target<T>& y, const Loss& loss, T* dX, bool training = true,
                       double grad_scale = 1.0) {
    ConstMatMap<T> Z = forward(X, n, training);
    T* dZ = dout_buf_.data.data();
    const double value = n ? nativebp::loss_and_grad<T>(loss, Z, y, dZ) : 0.0;
    if (grad_scale != 1.0) MatMap<T>(dZ, n, out_) *= T(grad_scale);
    root_.backward(ConstMatMap<T>(X, n, in_), Z, ConstMatMap<T>(dZ, n, out_), MatMap<T>(dX, n, in_));
    return value;
  }

  // Loss value only (no backward): for evaluation and finite differences.
  double loss_value(const T* X, Index n, const Target<T>& y, const Loss& loss, bool training) {
    return nativebp::loss_and_grad<T>(loss, forward(X, n, training), y, nullptr);
  }

  void zero_grad() { std::fill(grad_.begin(), grad_.end(), T(0)); }

  // Adds the L1/L2 penalty gradients to the weights' gradients; returns the penalty value.
  double apply_penalty(double l1, double l2) {
    if (l1 == 0 && l2 == 0) return 0.0;
    double value = 0;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].is_weight || !trainable_[i]) continue;
      const T* w = param_.data() + slices_[i].offset;
      T* g = grad_.data() + slices_[i].offset;
      const T a = T(l1), b = T(l2);
      double s1 = 0, s2 = 0;
      for (Index j = 0; j < slices_[i].size; ++j) {
        s1 += std::abs(double(w[j]));
        s2 += double(w[j]) * double(w[j]);
        g[j] += a * T((w[j] > 0) - (w[j] < 0)) + b * w[j];  // d/dw = l1 sign(w) + l2 w
      }
      value += l1 * s1 + 0.5 * l2 * s2;
    }
    return value;
  }

  // Clips the trainable gradients; returns the global norm before clipping (0 if not computed).
  double clip(double max_norm, double max_value) {
    if (max_value > 0) {
      const T v = T(max_value);
      for (std::size_t i = 0; i < params_.size(); ++i) {
        if (!trainable_[i]) continue;
        T* g = grad_.data() + slices_[i].offset;
        for (Index j = 0; j < slices_[i].size; ++j) g[j] = std::max(-v, std::min(v, g[j]));
      }
    }
    if (!(max_norm > 0)) return 0.0;
    double sq = 0;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!trainable_[i]) continue;
      const T* g = grad_.data() + slices_[i].offset;
      for (Index j = 0; j < slices_[i].size; ++j) sq += double(g[j]) * double(g[j]);
    }
    const double norm = std::sqrt(sq);
    const double coef = max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    if (coef < 1.0)
      for (std::size_t i = 0; i < params_.size(); ++i) {
        if (!trainable_[i]) continue;
        T* g = grad_.data() + slices_[i].offset;
        for (Index j = 0; j < slices_[i].size; ++j) g[j] *= T(coef);
      }
    return norm;
  }

  // One optimizer step on the trainable tensors the optimizer owns (`owned` empty: all).
  void step(Optimizer<T>& opt, const std::vector<char>& owned) {
    if (owned.empty()) { opt.step(param_.data(), grad_.data(), slices_, trainable_); return; }
    active_.resize(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i) active_[i] = trainable_[i] && owned[i];
    opt.step(param_.data(), grad_.data(), slices_, active_);
  }

  // True when every trainable gradient is finite (a finite loss can still overflow in backward).
  bool grads_finite() const {
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (trainable_[i] && !all_finite(grad_.data() + slices_[i].offset, slices_[i].size)) return false;
    return true;
  }

  // zero_grad, forward, loss, backward, penalties, clipping, step. Returns the loss including
  // the penalty; a non-finite loss or gradient skips the step (returning NaN for the latter),
  // so the weights stay the last finite ones.
  double train_step(const T* X, Index n, const Target<T>& y, const Loss& loss, Optimizer<T>& opt,
                    const std::vector<char>& owned, const StepOptions& o) {
    double value;
    if (overwrite_grads_) {  // every layer stores its gradients: no zero_grad pass (mnist: 1 MB a step)
      struct Restore {
        SequentialBlock<T>& root;
        ~Restore() { root.set_overwrite_grads(false); }  // loss_and_grad() accumulates again, also after a throw
      } restore{root_};
      root_.set_overwrite_grads(true);
      value = loss_and_grad(X, n, y, loss, nullptr);
    } else {
      zero_grad();
      value = loss_and_grad(X, n, y, loss, nullptr);
    }
    if (!std::isfinite(value)) return value;
    value += apply_penalty(o.l1, o.l2);
    clip(o.clip_norm, o.clip_value);
    if (!grads_finite()) return std::numeric_limits<double>::quiet_NaN();
    step(opt, owned);
    return value;
  }

 private:
  SequentialBlock<T> root_;
  Index in_, out_;
  Rng rng_;
  std::vector<ParamInfo> params_, states_;
  std::vector<Slice> slices_;
  std::vector<Index> state_offsets_;
  Buffer<T> param_, grad_, state_;
  std::vector<char> trainable_, active_;
  Scratch<T> out_buf_, dout_buf_;
  Index capacity_ = 0;
  Collective collective_;  // the layers hold a pointer to it; empty unless set_allreduce filled it
  bool overwrite_grads_ = false;  // every layer can store its gradients (train_step skips zero_grad)
  std::mutex mutex_;
};

}  // namespace nativebp
