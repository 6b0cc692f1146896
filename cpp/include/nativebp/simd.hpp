// The float SIMD vector of the instruction set this translation unit is compiled for: AVX-512,
// AVX2+FMA or the x86-64 baseline (SSE2), chosen by the compiler flags of each engine variant
// (see CMakeLists.txt); the GEMM kernels are written once against this interface.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace nativebp::simd {

#if defined(__AVX512F__)
constexpr int W = 16;
constexpr const char* kIsa = "avx512";
using vf = __m512;
inline vf zero() { return _mm512_setzero_ps(); }
inline vf set1(float x) { return _mm512_set1_ps(x); }
inline vf load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf add(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf max(vf a, vf b) { return _mm512_max_ps(a, b); }
inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
// hsum(v[i]) for 8 vectors at once, in lanes 0-7 of the result (lanes 8-15: copies): a shuffle
// tree shares the work (24 ops, not 64).
__attribute__((always_inline)) inline vf hsum8_lanes(const vf* v) {
  vf t[4], u[2];
  for (int k = 0; k < 4; ++k)  // halves: [v2k q0+q2, q1+q3, v2k+1 q0+q2, q1+q3]
    t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  for (int k = 0; k < 2; ++k)  // quarters: quad q holds 4 partial sums of v[4k + q]
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * k], t[2 * k + 1], 0xDD));
  vf s = _mm512_add_ps(_mm512_unpacklo_ps(u[0], u[1]), _mm512_unpackhi_ps(u[0], u[1]));
  s = _mm512_add_ps(s, _mm512_shuffle_ps(s, s, 0x4E));  // lane 4q: sum of v[q], lane 4q+1: of v[4+q]
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 4, 8, 12, 1, 5, 9, 13), s);
}
// out[i] = hsum(v[i]) for 8 vectors.
__attribute__((always_inline)) inline void hsum8(const vf* v, float* out) {
  _mm256_storeu_ps(out, _mm512_castps512_ps256(hsum8_lanes(v)));
}
// v where m > 0, else 0 (NaN in m counts as not > 0).
inline vf keep_positive(vf m, vf v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, zero(), _CMP_GT_OQ), v); }
// The first n (< W) lanes; the others read as zero and are never touched in memory.
inline vf load_part(const float* p, int n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
inline void store_part(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int W = 8;
constexpr const char* kIsa = "avx2";
using vf = __m256;
inline vf zero() { return _mm256_setzero_ps(); }
inline vf set1(float x) { return _mm256_set1_ps(x); }
inline vf load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf add(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf max(vf a, vf b) { return _mm256_max_ps(a, b); }
inline float hsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline vf keep_positive(vf m, vf v) { return _mm256_and_ps(_mm256_cmp_ps(m, zero(), _CMP_GT_OQ), v); }
inline __m256i part_mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
inline vf load_part(const float* p, int n) { return _mm256_maskload_ps(p, part_mask(n)); }
inline void store_part(float* p, vf v, int n) { _mm256_maskstore_ps(p, part_mask(n), v); }
#elif defined(__SSE2__)
constexpr int W = 4;
constexpr const char* kIsa = "baseline";
using vf = __m128;
inline vf zero() { return _mm_setzero_ps(); }
inline vf set1(float x) { return _mm_set1_ps(x); }
inline vf load(const float* p) { return _mm_loadu_ps(p); }
inline void store(float* p, vf v) { _mm_storeu_ps(p, v); }
inline vf fma(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }  // no FMA unit before AVX2
inline vf add(vf a, vf b) { return _mm_add_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm_mul_ps(a, b); }
inline vf max(vf a, vf b) { return _mm_max_ps(a, b); }
inline float hsum(vf v) {
  __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
inline vf keep_positive(vf m, vf v) { return _mm_and_ps(_mm_cmpgt_ps(m, zero()), v); }
inline vf load_part(const float* p, int n) {
  alignas(16) float t[4] = {0, 0, 0, 0};
  std::memcpy(t, p, sizeof(float) * unsigned(n));
  return _mm_load_ps(t);
}
inline void store_part(float* p, vf v, int n) {
  alignas(16) float t[4];
  _mm_store_ps(t, v);
  std::memcpy(p, t, sizeof(float) * unsigned(n));
}
#else  // not x86: GCC/Clang vector extensions, which every target lowers to its own SIMD
constexpr int W = 4;
constexpr const char* kIsa = "baseline";
typedef float vf __attribute__((vector_size(16)));
inline vf zero() { return vf{0, 0, 0, 0}; }
inline vf set1(float x) { return vf{x, x, x, x}; }
inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf fma(vf a, vf b, vf c) { return a * b + c; }
inline vf add(vf a, vf b) { return a + b; }
inline vf mul(vf a, vf b) { return a * b; }
inline vf max(vf a, vf b) { return a > b ? a : b; }
inline float hsum(vf v) { return (v[0] + v[1]) + (v[2] + v[3]); }
inline vf keep_positive(vf m, vf v) { return m > zero() ? v : zero(); }
inline vf load_part(const float* p, int n) { vf v = zero(); std::memcpy(&v, p, sizeof(float) * unsigned(n)); return v; }
inline void store_part(float* p, vf v, int n) { std::memcpy(p, &v, sizeof(float) * unsigned(n)); }
#endif

// 1 - m^2 (one fused multiply-add where the CPU has FMA), the same in every lane and in the
// scalar form, so a product's vector and scalar stores agree.
inline vf one_minus_square(vf m) { return fma(mul(m, set1(-1.0f)), m, set1(1.0f)); }
#if defined(__FMA__)
inline float one_minus_square(float m) { return __builtin_fmaf(-m, m, 1.0f); }
#else  // simd::fma is a multiply then an add here: two roundings, as in the vector form
inline float one_minus_square(float m) { return -m * m + 1.0f; }
#endif

#if !defined(__AVX512F__)
__attribute__((always_inline)) inline void hsum8(const vf* v, float* out) {
  for (int i = 0; i < 8; ++i) out[i] = hsum(v[i]);
}
#endif

}  // namespace nativebp::simd
