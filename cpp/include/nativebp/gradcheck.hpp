// Finite-difference check of every analytic gradient (parameters and input).
// The derivative is the 4-point central difference (f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h,
// error O(h^4); h = 1e-4 max(1, |x|) keeps truncation (~h^4) and rounding (~1e-16/h) near 1e-12 in float64.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "network.hpp"

namespace nativebp {

struct GradcheckEntry {
  std::string name;     // parameter name, or "input"
  double max_error = 0; // max relative error over the checked elements
  Index worst_index = -1, checked = 0;
  double analytic = 0, numeric = 0;  // at the worst element
};

// Numeric derivatives of f with respect to the chosen elements of x (all, or max_checks sampled).
template <typename T>
void numeric_grad(T* x, Index size, Index max_checks, Rng& pick, const std::function<double()>& f,
                  std::vector<Index>& idx, std::vector<double>& numeric) {
  idx.resize(static_cast<std::size_t>(size));
  std::iota(idx.begin(), idx.end(), Index(0));
  if (max_checks > 0 && max_checks < size) {
    pick.shuffle(idx.data(), idx.size());
    idx.resize(std::size_t(max_checks));
  }
  numeric.resize(idx.size());
  const double steps[4] = {-2, -1, 1, 2};
  for (std::size_t k = 0; k < idx.size(); ++k) {
    T& v = x[idx[k]];
    const T orig = v;
    const double h = 1e-4 * std::max(1.0, std::abs(double(orig)));
    double fv[4];
    for (int s = 0; s < 4; ++s) { v = T(double(orig) + steps[s] * h); fv[s] = f(); }
    v = orig;
    numeric[k] = (fv[0] - 8 * fv[1] + 8 * fv[2] - fv[3]) / (12 * h);
  }
}

// Relative error of one element: |a - n| / max(|a|, |n|, floor). The floor is 1% of the largest
// numeric gradient in the same tensor, and at least 1e-3 of the largest in the whole network, so
// elements that are (near) zero, e.g. a bias just before BatchNorm, are judged on the network's scale.
inline GradcheckEntry judge(const std::string& name, const std::vector<Index>& idx, const std::vector<double>& numeric,
                            const double* analytic, double network_scale) {
  GradcheckEntry e;
  e.name = name;
  double scale = 0;
  for (double n : numeric) scale = std::max(scale, std::abs(n));
  const double floor = std::max({1e-2 * scale, 1e-3 * network_scale, 1e-300});
  for (std::size_t k = 0; k < idx.size(); ++k) {
    const double a = analytic[k], n = numeric[k];
    const double err = std::abs(a - n) / std::max({std::abs(a), std::abs(n), floor});
    if (err > e.max_error || e.worst_index < 0) {
      e.max_error = err; e.worst_index = idx[k]; e.analytic = a; e.numeric = n;
    }
  }
  e.checked = Index(idx.size());
  return e;
}

// Checks every parameter tensor and the input; noise (dropout masks) is frozen, and running
// statistics and the generator are restored afterwards, so the network is left as it was.
template <typename T>
std::vector<GradcheckEntry> gradcheck(Network<T>& net, const T* X, Index n, const Target<T>& y, const Loss& loss,
                                      Index max_checks, std::uint64_t seed, bool training) {
  const Buffer<T> saved_state = net.state(), saved_grad = net.grad();
  const Rng saved_rng = net.rng();  // the check's one draw of noise must not shift later training
  Buffer<T> xcopy(X, X + n * net.in_features());
  Buffer<T> dX(xcopy.size());
  net.root().freeze_noise(false);
  net.zero_grad();
  net.loss_and_grad(xcopy.data(), n, y, loss, dX.data(), training);  // draws the noise once
  net.root().freeze_noise(true);
  const Buffer<T> analytic = net.grad();
  auto f = [&]() { return net.loss_value(xcopy.data(), n, y, loss, training); };
  Rng pick(seed);
  const std::size_t count = net.param_info().size() + 1;  // every parameter tensor, then the input
  std::vector<std::vector<Index>> idx(count);
  std::vector<std::vector<double>> numeric(count), picked(count);
  try {
    for (std::size_t i = 0; i < count; ++i) {
      const bool input = i + 1 == count;
      T* x = input ? xcopy.data() : net.param().data() + net.slices()[i].offset;
      const T* a = input ? dX.data() : analytic.data() + net.slices()[i].offset;
      numeric_grad<T>(x, input ? Index(xcopy.size()) : net.slices()[i].size, max_checks, pick, f, idx[i], numeric[i]);
      for (Index j : idx[i]) picked[i].push_back(double(a[j]));
    }
  } catch (...) {
    net.root().freeze_noise(false);
    net.state() = saved_state;
    net.rng() = saved_rng;
    throw;
  }
  double network_scale = 0;
  for (auto& v : numeric) for (double n : v) network_scale = std::max(network_scale, std::abs(n));
  std::vector<GradcheckEntry> out;
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(judge(i + 1 == count ? std::string("input") : net.param_info()[i].name, idx[i], numeric[i],
                        picked[i].data(), network_scale));
  net.root().freeze_noise(false);
  net.state() = saved_state;
  net.grad() = saved_grad;
  net.rng() = saved_rng;
  return out;
}

}  // namespace nativebp
