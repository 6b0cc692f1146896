// Weight initializers (Glorot & Bengio 2010; He et al. 2015; LeCun et al. 1998), drawn from a seeded Rng.
#pragma once
#include <cmath>
#include <string>

#include "random.hpp"
#include "tensor.hpp"

namespace nativebp {

struct Init {
  std::string name = "xavier_uniform";
  double arg = 0.1;  // the bound for "uniform"
};

inline bool is_known_init(const std::string& n) {
  return n == "xavier_uniform" || n == "xavier_normal" || n == "he_uniform" || n == "he_normal" ||
         n == "lecun_normal" || n == "lecun_uniform" || n == "uniform" || n == "zeros" || n == "normal";
}

// Fill a (fan_in x fan_out) weight matrix.
template <typename T>
void initialize(T* w, Index fan_in, Index fan_out, const Init& init, Rng& rng) {
  const Index n = fan_in * fan_out;
  const double fi = double(fan_in), fo = double(fan_out);
  auto fill_uniform = [&](double bound) { for (Index i = 0; i < n; ++i) w[i] = T(rng.uniform(-bound, bound)); };
  auto fill_normal = [&](double std) { for (Index i = 0; i < n; ++i) w[i] = T(std * rng.normal()); };
  const std::string& k = init.name;
  if (k == "xavier_uniform") fill_uniform(std::sqrt(6.0 / (fi + fo)));        // U(-a, a), a = sqrt(6/(in+out))
  else if (k == "xavier_normal") fill_normal(std::sqrt(2.0 / (fi + fo)));     // N(0, 2/(in+out))
  else if (k == "he_uniform") fill_uniform(std::sqrt(6.0 / fi));              // U(-a, a), a = sqrt(6/in)
  else if (k == "he_normal") fill_normal(std::sqrt(2.0 / fi));                // N(0, 2/in)
  else if (k == "lecun_normal") fill_normal(std::sqrt(1.0 / fi));             // N(0, 1/in)
  else if (k == "lecun_uniform") fill_uniform(std::sqrt(3.0 / fi));           // U(-a, a), a = sqrt(3/in)
  else if (k == "uniform") fill_uniform(init.arg);                            // U(-a, a), textbook a = 0.1
  else if (k == "normal") fill_normal(init.arg);                              // N(0, a^2)
  else if (k == "zeros") for (Index i = 0; i < n; ++i) w[i] = T(0);
  else throw ValueError("init: unknown initializer '" + k + "'");
}

}  // namespace nativebp
