// The Layer<T> interface: a layer maps a (batch x in) matrix to (batch x out) and sends
// gradients back. Parameters and gradients live in the network's flat buffers; a layer only
// holds pointers into them (bound once, after the network has sized its buffers).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "collective.hpp"
#include "random.hpp"
#include "tensor.hpp"

namespace nativebp {

// One named tensor inside the flat buffer, as Python sees it.
struct ParamInfo {
  std::string name;
  Index rows = 0, cols = 0;  // cols == 0 means a vector of length rows
  bool is_weight = false;    // weights get L1/L2 penalties; biases and norm scales do not
  Index size() const { return cols == 0 ? rows : rows * cols; }
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string kind() const = 0;

  // Output width for an input of width `in`; throws ValueError if the layer cannot take it.
  virtual Index output_width(Index in) const { return in; }

  // Trainable parameters (in the flat parameter buffer) and non-trainable state
  // such as running statistics (in the flat state buffer).
  virtual std::vector<ParamInfo> params() const { return {}; }
  virtual std::vector<ParamInfo> states() const { return {}; }
  virtual void bind(T* /*param*/, T* /*grad*/, T* /*state*/) {}
  virtual void reset_parameters(Rng& /*rng*/) {}

  // Size per-batch caches for up to `batch` rows; called before a larger batch arrives.
  virtual void reserve(Index /*batch*/) {}

  // Y = f(X). In training mode a layer may draw noise from `rng` and update running state.
  virtual void forward(ConstMatMap<T> X, MatMap<T> Y, bool training, Rng& rng) = 0;

  // Accumulates parameter gradients and writes dL/dX into dX unless dX.data() is null.
  // X and Y are the input and output of the last forward call.
  virtual void backward(ConstMatMap<T> X, ConstMatMap<T> Y, ConstMatMap<T> dY, MatMap<T> dX) = 0;

  // The network's cross-process sum (it outlives the layer); layers with batch statistics keep it.
  virtual void set_collective(const Collective* /*c*/) {}

  // Reuse the last noise (e.g. dropout mask) instead of drawing anew: for gradient checks.
  virtual void freeze_noise(bool /*frozen*/) {}

  // Whether backward can store its parameter gradients instead of adding to them, when told to
  // by set_overwrite_grads(true): a train step then needs no zero_grad pass over the gradients.
  // True for a layer without parameters (it writes none). Asked once, when the network is built.
  virtual bool can_overwrite_grads() const { return params().empty(); }
  virtual void set_overwrite_grads(bool /*on*/) {}
};

template <typename T>
using LayerPtr = std::unique_ptr<Layer<T>>;

}  // namespace nativebp
