// All-finite checks for inputs and gradients: one vectorised read, no branch per element.
#pragma once
#include "simd.hpp"
#include "tensor.hpp"

namespace nativebp {

// No NaN or infinity in p[0, n): x * 0 is 0 for finite x, NaN otherwise, and NaN survives the sum.
// Four sums side by side: one would wait on the adder's latency at every vector (deep: 2% of a step).
inline bool all_finite(const float* p, Index n) {
  simd::vf acc[4] = {simd::zero(), simd::zero(), simd::zero(), simd::zero()};
  const simd::vf z = simd::zero();
  Index i = 0;
  for (; i + 4 * simd::W <= n; i += 4 * simd::W)
    for (int u = 0; u < 4; ++u) acc[u] = simd::add(acc[u], simd::mul(simd::load(p + i + u * simd::W), z));
  for (; i + simd::W <= n; i += simd::W) acc[0] = simd::add(acc[0], simd::mul(simd::load(p + i), z));
  if (i < n) acc[0] = simd::add(acc[0], simd::mul(simd::load_part(p + i, int(n - i)), z));
  return simd::hsum(simd::add(simd::add(acc[0], acc[1]), simd::add(acc[2], acc[3]))) == 0.0f;
}
inline bool all_finite(const double* p, Index n) {
  double acc[4] = {0, 0, 0, 0};
  Index i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) acc[j] += p[i + j] * 0.0;
  for (; i < n; ++i) acc[0] += p[i] * 0.0;
  return acc[0] + acc[1] + acc[2] + acc[3] == 0.0;
}

}  // namespace nativebp
