// Single-precision GEMM, row-major: C (m x n) = op(A) op(B) [+ C], then an epilogue (bias row,
// ReLU, or a ReLU mask), where op(A) is m x k (A, or A^T when ta) and op(B) is k x n (B, or B^T
// when tb). Written for the engine's three products: Y = X W + b (forward, ReLU fused),
// dW += X^T dY, dX = (dY W^T) * [A > 0] (backward through a fused ReLU).
//
// Large products pack op(B) into NR-column panels (contiguous, zero-padded; transposes happen
// here) and op(A) into MR-row panels unless A can be read in place, then tiles of C are pool
// tasks for a register-blocked micro-kernel (MR x NR accumulators). Small products skip packing
// (B^T excepted) and stay on one thread: there, copying or another core costs more than it saves.
// Products with k <= kShortK keep op(B) in registers instead; those with n <= 4 outputs (narrow)
// vectorize along k or m; a 1- or 2-output layer's backward is one pass (narrow_backward_through).
// Each tile is computed the same way whichever thread runs it: results do not depend on the
// thread count.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "simd.hpp"
#include "threads.hpp"

namespace nativebp::gemm {

using Index = std::ptrdiff_t;
using simd::vf;
using simd::W;

// Register block: MR rows x NV vectors. Accumulators + B vectors + 1 broadcast fit the registers.
#if defined(__AVX512F__)
constexpr int MR = 8, NV = 2;  // 16 of 32 zmm: 8 | 128, 256, 1024 rows of a batch, 32 | most widths
#elif defined(__AVX2__)
constexpr int MR = 6, NV = 2;  // 12 of 16 ymm
#else
constexpr int MR = 4, NV = 2;  // 8 of 16 xmm
#endif
constexpr int NR = NV * W;
// k-block: an A micro-panel (MR x KC, 16 KiB) stays in L1 while B panels stream from L2. Tiles
// of MC x NC panels (64 x 128 for AVX-512) keep their B block (KC x 128, 256 KiB) in L2.
// Chosen by measurement on Zen 4 (KC 128..1024, MC 4..16, NC 2..16).
constexpr Index KC = 512, MC = 8, NC = 4;

// Products below kDirectWork multiply-adds are not packed; below kParallelWork they stay on one
// thread: a second core first has to fetch the operands from the first one's cache, which for
// deep's 32x64x64 (2.5 us) made 2 threads 1.6x slower (29% of jobs waited ~5 us on the worker).
// A one- or two-row product (a sample's inference) reads weights that stay in each core's cache
// from call to call: split in two from kGemvParallel weights.
constexpr double kDirectWork = 1 << 19, kParallelWork = 1 << 20, kGemvParallel = 1 << 17;

// What the store of C does after the product: + bias[j]; then max(0, .) (relu), or
// * [mask[i][j] > 0] (the backward of a ReLU whose output is `mask`), or with `tanh_mask`
// * (1 - mask[i][j]^2) (the backward of a Tanh whose output is `mask`). NaN passes through all.
struct Epilogue {
  const float* bias = nullptr;
  bool relu = false;
  const float* mask = nullptr;
  Index ldm = 0;
  bool tanh_mask = false;
  // The same epilogue for the block of C that starts at (i, j).
  Epilogue at(Index i, Index j) const {
    Epilogue e = *this;
    if (e.bias) e.bias += j;
    if (e.mask) e.mask += i * ldm + j;
    return e;
  }
  // For one k-block of several: the bias goes with the first, relu and mask with the last.
  Epilogue part(bool first, bool last) const {
    Epilogue e = *this;
    if (!first) e.bias = nullptr;
    if (!last) e.relu = false, e.mask = nullptr;
    return e;
  }
  __attribute__((always_inline)) vf apply(vf r, Index j, int cnt) const { return apply(r, mask, j, cnt); }
  // The same with the mask's row given (mask_row: this row of `mask`, or null when there is none).
  __attribute__((always_inline)) vf apply(vf r, const float* mask_row, Index j, int cnt) const {
    const bool full = cnt == W;
    if (bias) r = simd::add(r, full ? simd::load(bias + j) : simd::load_part(bias + j, cnt));
    if (relu) r = simd::max(simd::zero(), r);
    if (mask_row) {
      const vf m = full ? simd::load(mask_row + j) : simd::load_part(mask_row + j, cnt);
      r = tanh_mask ? simd::mul(r, simd::one_minus_square(m)) : simd::keep_positive(m, r);
    }
    return r;
  }
  __attribute__((always_inline)) float apply(float v, Index i, Index j) const {
    if (bias) v += bias[j];
    if (relu) v = v < 0.0f ? 0.0f : v;
    if (mask) {
      const float m = mask[i * ldm + j];
      v = tanh_mask ? v * simd::one_minus_square(m) : m > 0.0f ? v : 0.0f;
    }
    return v;
  }
};

enum class Src { Packed, Rows, Cols };  // how A's (i, p) is found: packed panel, A[i][p] or A[p][i]

// C block (m <= R rows, n <= V*W columns) from R x kc of op(A) and kc x V*W of op(B).
template <int R, int V, Src SA, bool PackedB>
inline void micro(Index kc, const float* a, Index lda, const float* b, Index ldb, float* c, Index ldc, int m, int n,
                  bool accumulate, const Epilogue& ep) {
  vf acc[R][V];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[i][v] = simd::zero();
  auto A = [&](int i, Index p) -> float {
    if constexpr (SA == Src::Packed) return a[p * R + i];
    else if constexpr (SA == Src::Rows) return a[i * lda + p];
    else return a[p * lda + i];
  };
  auto body = [&](auto full) {
    const Index bs = PackedB ? Index(V * W) : ldb;
    for (Index p = 0; p < kc; ++p) {
      const float* bp = b + p * bs;
      if constexpr (R == 1 && decltype(full)::value) {  // no reuse of B across rows: load into the FMA
        const vf ai = simd::set1(A(0, p));
#pragma GCC unroll 16
        for (int v = 0; v < V; ++v) acc[0][v] = simd::fma(ai, simd::load(bp + v * W), acc[0][v]);
        continue;
      }
      vf bv[V];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) {
        if constexpr (decltype(full)::value) bv[v] = simd::load(bp + v * W);
        else bv[v] = v * W >= n ? simd::zero() : n - v * W >= W ? simd::load(bp + v * W) : simd::load_part(bp + v * W, n - v * W);
      }
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const vf ai = simd::set1(A(i, p));
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[i][v] = simd::fma(ai, bv[v], acc[i][v]);
      }
    }
  };
  if (PackedB || n == V * W) body(std::true_type{});
  else body(std::false_type{});
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    if (i >= m) break;
    float* cr = c + i * ldc;
    const Epilogue e = ep.mask ? ep.at(i, 0) : ep;
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const int col = v * W, cnt = std::min(W, n - col);
      if (cnt <= 0) break;
      vf r = acc[i][v];
      if (cnt == W) {
        if (accumulate) r = simd::add(r, simd::load(cr + col));
        simd::store(cr + col, e.apply(r, col, cnt));
      } else {
        if (accumulate) r = simd::add(r, simd::load_part(cr + col, cnt));
        simd::store_part(cr + col, e.apply(r, col, cnt), cnt);
      }
    }
  }
}

// The micro-kernel for `rows` (<= MR) rows: a kernel of exactly that height never reads past the
// last row of an unpacked A.
template <Src SA, bool PackedB>
inline void rows_kernel(int rows, Index kc, const float* a, Index lda, const float* b, Index ldb, float* c, Index ldc,
                        int cols, bool accumulate, const Epilogue& ep) {
  switch (rows) {
#define NATIVEBP_ROWS(r) \
  case r: micro<(r <= MR ? r : 1), NV, SA, PackedB>(kc, a, lda, b, ldb, c, ldc, rows, cols, accumulate, ep); break;
    NATIVEBP_ROWS(1) NATIVEBP_ROWS(2) NATIVEBP_ROWS(3) NATIVEBP_ROWS(4) NATIVEBP_ROWS(5) NATIVEBP_ROWS(6)
    NATIVEBP_ROWS(7) NATIVEBP_ROWS(8)
#undef NATIVEBP_ROWS
    default: break;
  }
}

// ---------------------------------------------------------------- packing
// dst[p * R + r] = src[r * ld + p] for r < rows (zero beyond), p < k: R rows become k R-wide rows.
template <int R>
inline void pack_transposing(const float* src, Index ld, int rows, Index k, float* dst) {
  Index p = 0;
#if defined(__AVX2__)
  if constexpr (R % 8 == 0) {
    if (rows == R) {
      for (; p + 8 <= k; p += 8)
        for (int r0 = 0; r0 < R; r0 += 8) {  // 8 x 8 transpose in registers
          __m256 t[8], u[8];
          for (int r = 0; r < 8; ++r) t[r] = _mm256_loadu_ps(src + (r0 + r) * ld + p);
          for (int r = 0; r < 8; r += 2) {
            u[r] = _mm256_unpacklo_ps(t[r], t[r + 1]);
            u[r + 1] = _mm256_unpackhi_ps(t[r], t[r + 1]);
          }
          for (int r = 0; r < 8; r += 4) {
            t[r] = _mm256_shuffle_ps(u[r], u[r + 2], 0x44);
            t[r + 1] = _mm256_shuffle_ps(u[r], u[r + 2], 0xEE);
            t[r + 2] = _mm256_shuffle_ps(u[r + 1], u[r + 3], 0x44);
            t[r + 3] = _mm256_shuffle_ps(u[r + 1], u[r + 3], 0xEE);
          }
          for (int q = 0; q < 4; ++q) {
            _mm256_storeu_ps(dst + (p + q) * R + r0, _mm256_permute2f128_ps(t[q], t[q + 4], 0x20));
            _mm256_storeu_ps(dst + (p + q + 4) * R + r0, _mm256_permute2f128_ps(t[q], t[q + 4], 0x31));
          }
        }
    }
  }
#endif
  for (; p < k; p += 8) {
    const int q_end = int(std::min<Index>(8, k - p));
    for (int r = 0; r < R; ++r) {
      const float* s = src + r * ld + p;
      for (int q = 0; q < q_end; ++q) dst[(p + q) * R + r] = r < rows ? s[q] : 0.0f;
    }
  }
}

// dst[p * R + j] = src[p * ld + j] for j < cols (zero beyond): k rows of an R-wide panel.
template <int R>
inline void pack_copying(const float* src, Index ld, int cols, Index k, float* dst) {
  for (Index p = 0; p < k; ++p) {
    float* d = dst + p * R;
    const float* s = src + p * ld;
    if (cols == R) {
      std::memcpy(d, s, sizeof(float) * R);
    } else {
      for (int j = 0; j < R; ++j) d[j] = j < cols ? s[j] : 0.0f;
    }
  }
}

// MR-row panel ip of op(A) over all k, and NR-column panel jp of op(B).
inline void pack_a(bool ta, const float* A, Index lda, Index m, Index k, Index ip, float* dst) {
  const int rows = int(std::min<Index>(MR, m - ip * MR));
  if (ta) pack_copying<MR>(A + ip * MR, lda, rows, k, dst);
  else pack_transposing<MR>(A + ip * MR * lda, lda, rows, k, dst);
}
inline void pack_b(bool tb, const float* B, Index ldb, Index n, Index k, Index jp, float* dst) {
  const int cols = int(std::min<Index>(NR, n - jp * NR));
  if (tb) pack_transposing<NR>(B + jp * NR * ldb, ldb, cols, k, dst);
  else pack_copying<NR>(B + jp * NR, ldb, cols, k, dst);
}

// ---------------------------------------------------------------- scratch
// 64-byte aligned, owned by the calling thread, grown and never shrunk: a steady state of
// same-sized products allocates nothing.
struct Buffer {
  float* p = nullptr;
  std::size_t cap = 0;
  float* get(std::size_t n) {
    if (n > cap) {
      std::free(p);
      cap = std::max(n, cap + cap / 2);
      p = static_cast<float*>(std::aligned_alloc(64, (cap * sizeof(float) + 63) / 64 * 64));
      if (!p) { cap = 0; throw std::bad_alloc(); }
    }
    return p;
  }
  ~Buffer() { std::free(p); }
};
inline Buffer& scratch(int which) {
  static thread_local Buffer buffers[2];
  return buffers[which];
}

inline Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

// Threads worth using for `work` multiply-adds: one below the threshold, the pool above.
inline int threads_for(double work, double threshold = kParallelWork) {
  return work < threshold ? 1 : threads::num_threads();
}

// ---------------------------------------------------------------- small products
// Unpacked A, B unpacked (row-major op(B)) or packed; one thread.
template <Src SA, bool PackedB>
inline void direct(Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                   bool accumulate, const Epilogue& ep) {
  auto a_at = [&](Index i) { return SA == Src::Rows ? A + i * lda : A + i; };
  auto b_at = [&](Index j) { return PackedB ? B + (j / NR) * k * NR : B + j; };
  if (m <= 2) {  // a row or two (a sample's inference): wide blocks, many FMAs in flight per row of B
    Index j = 0;
    if constexpr (!PackedB) {
      constexpr int VM = 8;  // 8 vectors per block: on 784 x 256, 16 (whole rows) took 9.4 us, 8: 7.3, 4: 7.5
      auto block = [&](auto v) {
        constexpr int V = decltype(v)::value;
        for (; j + V * W <= n; j += V * W) {
          if (m == 1) micro<1, V, SA, false>(k, a_at(0), lda, b_at(j), ldb, C + j, ldc, 1, V * W, accumulate, ep.at(0, j));
          else micro<2, V / 2, SA, false>(k, a_at(0), lda, b_at(j), ldb, C + j, ldc, 2, V / 2 * W, accumulate, ep.at(0, j)),
               micro<2, V / 2, SA, false>(k, a_at(0), lda, b_at(j) + V / 2 * W, ldb, C + j + V / 2 * W, ldc, 2, V / 2 * W,
                                          accumulate, ep.at(0, j + V / 2 * W));
        }
      };
      block(std::integral_constant<int, VM>{});
      block(std::integral_constant<int, VM / 2>{});
      block(std::integral_constant<int, VM / 4>{});
    }
    for (; j < n; j += NR)
      rows_kernel<SA, PackedB>(int(m), k, a_at(0), lda, b_at(j), ldb, C + j, ldc, int(std::min<Index>(NR, n - j)),
                               accumulate, ep.at(0, j));
    return;
  }
  for (Index i = 0; i < m; i += MR)
    for (Index j = 0; j < n; j += NR)
      rows_kernel<SA, PackedB>(int(std::min<Index>(MR, m - i)), k, a_at(i), lda, b_at(j), ldb, C + i * ldc + j, ldc,
                               int(std::min<Index>(NR, n - j)), accumulate, ep.at(i, j));
}

// ---------------------------------------------------------------- short products (k <= kShortK)
// With k this small a register tile of C gets few FMAs per load and store, and the tile
// kernel's per-call cost dominates (100 x 64 x 2 with a ReLU mask, AVX-512: 1.07 us as tiles,
// 0.71 us here). A K x V*W panel of op(B) stays in registers (K * V <= 24 of 32) while the rows
// of A stream past it. Same arithmetic as `micro` (FMAs from zero in p order, then + C, then the
// epilogue): same bits. With 16 registers (AVX2, SSE) a panel of more than 4 rows leaves too
// few columns per pass: 100 x 64 x 10 took 2.3 us this way against 1.8 us as tiles (AVX2).
constexpr int kShortK = W == 16 ? 12 : 4;
constexpr int kShortRegs = W == 16 ? 24 : 12;  // of 32 zmm / 16 ymm or xmm: the rest for A and C

template <int K, int V, Src SA>
inline void short_rows(Index m, int n, const float* A, Index lda, const float* panel, float* C, Index ldc,
                       bool accumulate, const Epilogue& ep) {
  vf b[K][V];
#pragma GCC unroll 16
  for (int p = 0; p < K; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) b[p][v] = simd::load(panel + (p * V + v) * W);
  for (Index i = 0; i < m; ++i) {
    const float* a = SA == Src::Rows ? A + i * lda : A + i;
    vf acc[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[v] = simd::zero();
#pragma GCC unroll 16
    for (int p = 0; p < K; ++p) {
      const vf ai = simd::set1(SA == Src::Rows ? a[p] : a[p * lda]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[v] = simd::fma(ai, b[p][v], acc[v]);
    }
    float* c = C + i * ldc;
    const float* mask_row = ep.mask ? ep.mask + i * ep.ldm : nullptr;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const int col = v * W, cnt = std::min(W, n - col);
      if (cnt <= 0) break;
      vf r = acc[v];
      if (cnt == W) {
        if (accumulate) r = simd::add(r, simd::load(c + col));
        simd::store(c + col, ep.apply(r, mask_row, col, cnt));
      } else {
        if (accumulate) r = simd::add(r, simd::load_part(c + col, cnt));
        simd::store_part(c + col, ep.apply(r, mask_row, col, cnt), cnt);
      }
    }
  }
}

// short_rows<k, V> for a runtime k (<= kShortK) and V (4, 2 or 1, k * V <= kShortRegs).
template <Src SA, int K = 1>
inline void short_rows_for(int k, int V, Index m, int n, const float* A, Index lda, const float* panel, float* C,
                           Index ldc, bool accumulate, const Epilogue& ep) {
  if (k == K) {
    if constexpr (K * 4 <= kShortRegs) if (V == 4) return short_rows<K, 4, SA>(m, n, A, lda, panel, C, ldc, accumulate, ep);
    if constexpr (K * 2 <= kShortRegs) if (V == 2) return short_rows<K, 2, SA>(m, n, A, lda, panel, C, ldc, accumulate, ep);
    return short_rows<K, 1, SA>(m, n, A, lda, panel, C, ldc, accumulate, ep);
  }
  if constexpr (K < kShortK) short_rows_for<SA, K + 1>(k, V, m, n, A, lda, panel, C, ldc, accumulate, ep);
}

// C (m x n) from op(A) (m x k, k <= kShortK) and op(B), in passes of V*W columns: each pass
// copies its k x V*W block of op(B) (gathering a B^T; zero past column n) into a panel.
template <Src SA>
inline void short_k(bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb, float* C,
                    Index ldc, bool accumulate, const Epilogue& ep) {
  int V = 4;
  while (V > 1 && (k * V > kShortRegs || (V / 2) * W >= n)) V /= 2;
  alignas(64) float panel[kShortK * 4 * W];
  for (Index j0 = 0; j0 < n; j0 += V * W) {
    const int cols = int(std::min<Index>(V * W, n - j0));
    if (cols < V * W) std::memset(panel, 0, sizeof(float) * std::size_t(k * V * W));
    if (tb) {
      for (int j = 0; j < cols; ++j)
        for (Index p = 0; p < k; ++p) panel[p * V * W + j] = B[(j0 + j) * ldb + p];
    } else {
      for (Index p = 0; p < k; ++p) std::memcpy(panel + p * V * W, B + p * ldb + j0, sizeof(float) * std::size_t(cols));
    }
    short_rows_for<SA>(int(k), V, m, cols, A, lda, panel, C + j0, ldc, accumulate, ep.at(0, j0));
  }
}

// Rows i0..i1 and columns j0..j1 of C (j0 a multiple of NR) as a small product. A B^T is packed
// first, by the thread that uses it, into its own scratch: the kernel wants rows of op(B).
inline void direct_part(bool ta, bool tb, Index i0, Index i1, Index j0, Index j1, Index k, const float* A, Index lda,
                        const float* B, Index ldb, float* C, Index ldc, bool accumulate, const Epilogue& ep) {
  const float* a = ta ? A + i0 : A + i0 * lda;
  float* c = C + i0 * ldc + j0;
  const Epilogue e = ep.at(i0, j0);
  const Index mm = i1 - i0, nn = j1 - j0;
  if (k <= kShortK && mm > 2) {
    if (ta) short_k<Src::Cols>(tb, mm, nn, k, a, lda, B + (tb ? j0 * ldb : j0), ldb, c, ldc, accumulate, e);
    else short_k<Src::Rows>(tb, mm, nn, k, a, lda, B + (tb ? j0 * ldb : j0), ldb, c, ldc, accumulate, e);
    return;
  }
  if (tb) {
    const Index pb = ceil_div(nn, NR);
    float* Bp = scratch(1).get(std::size_t(pb * NR * k));
    for (Index jp = 0; jp < pb; ++jp) pack_b(true, B + j0 * ldb, ldb, nn, k, jp, Bp + jp * NR * k);
    if (ta) direct<Src::Cols, true>(mm, nn, k, a, lda, Bp, 0, c, ldc, accumulate, e);
    else direct<Src::Rows, true>(mm, nn, k, a, lda, Bp, 0, c, ldc, accumulate, e);
  } else {
    if (ta) direct<Src::Cols, false>(mm, nn, k, a, lda, B + j0, ldb, c, ldc, accumulate, e);
    else direct<Src::Rows, false>(mm, nn, k, a, lda, B + j0, ldb, c, ldc, accumulate, e);
  }
}

inline void small(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                  float* C, Index ldc, bool accumulate, const Epilogue& ep) {
  auto part = [&](Index i0, Index i1, Index j0, Index j1) {
    direct_part(ta, tb, i0, i1, j0, j1, k, A, lda, B, ldb, C, ldc, accumulate, ep);
  };
  const int nt = m <= 2 ? threads_for(double(n) * double(k), kGemvParallel) : threads_for(double(m) * n * k);
  if (nt < 2) {
    part(0, m, 0, n);
  } else if (m <= 2) {  // a sample's inference: one share of the columns per thread, pinned so
    // that each thread's share of the weights stays in its core's cache from call to call
    const Index chunks = ceil_div(n, 4 * W), tasks = std::min<Index>(nt, chunks);
    threads::parallel_for(tasks, [&](Index t) {
      part(0, m, chunks * t / tasks * 4 * W, std::min(n, chunks * (t + 1) / tasks * 4 * W));
    }, nt, true);
  } else if (tb) {  // B^T: each task packs only its own columns
    threads::parallel_for(ceil_div(n, NR), [&](Index t) { part(0, m, t * NR, std::min(n, (t + 1) * NR)); }, nt);
  } else {  // split the rows, a whole register block per task
    threads::parallel_for(ceil_div(m, MR), [&](Index t) { part(t * MR, std::min(m, (t + 1) * MR), 0, n); }, nt);
  }
}

// ---------------------------------------------------------------- narrow outputs (n <= 4)
// With n < W most vector lanes would idle; vectorize along another dimension instead.
constexpr int kNarrow = 4;

// op(A) = A^T (A stored k x m, contiguous along i): C^T = op(B)^T A is a normal product with
// vectors along i; computed in a small buffer, then added transposed into C.
template <int R, Src SB>
inline void narrow_ta(Index m, Index k, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                      bool accumulate, const Epilogue& ep) {
  constexpr int V = 4, L = V * W;
  alignas(64) float t[R * L];
  for (Index i0 = 0; i0 < m; i0 += L) {
    const int cols = int(std::min<Index>(L, m - i0));
    micro<R, V, SB, false>(k, B, ldb, A + i0, lda, t, L, R, cols, false, Epilogue{});
    for (int ii = 0; ii < cols; ++ii)
      for (int j = 0; j < R; ++j) {
        float* c = C + (i0 + ii) * ldc + j;
        *c = ep.apply((accumulate ? *c : 0.0f) + t[j * L + ii], i0 + ii, j);
      }
  }
}

// op(A) = A (rows contiguous along p): each C[i][j] is a dot product of a row of A and a column
// of op(B), given here as rows bt[j * ldbt + p]. 4 rows x NJ columns of C per block.
template <int NJ>
inline void narrow_dot(Index m, int n, Index k, const float* A, Index lda, const float* bt, Index ldbt, float* C,
                       Index ldc, bool accumulate, const Epilogue& ep) {
  constexpr int RI = 4;
#if defined(__AVX512F__)
  // All n columns, rows ldc apart: a block's outputs are contiguous, stored as one vector
  // (the mask epilogue keeps the scalar path).
  const bool contiguous = n == NJ && ldc == NJ && !ep.mask;
  alignas(64) float bias_row[W] = {};
  if (contiguous && ep.bias)  // n == NJ: bias holds NJ values
    for (int q = 0; q < W; ++q) bias_row[q] = ep.bias[q % NJ];
  const vf bias_lanes = simd::load(bias_row);  // bias[q % NJ]: output q's column's bias
#endif
  for (Index i0 = 0; i0 < m; i0 += RI) {
    const int rows = int(std::min<Index>(RI, m - i0));
    const float* a[RI];
    const float* b[NJ];
    for (int r = 0; r < RI; ++r) a[r] = A + (i0 + std::min(r, rows - 1)) * lda;  // past the end: repeat the last row
    for (int j = 0; j < NJ; ++j) b[j] = bt + std::min(j, n - 1) * ldbt;
    vf acc[RI][NJ];
    for (int r = 0; r < RI; ++r)
      for (int j = 0; j < NJ; ++j) acc[r][j] = simd::zero();
    Index p = 0;
    for (; p + W <= k; p += W) {
      vf bv[NJ];
      for (int j = 0; j < NJ; ++j) bv[j] = simd::load(b[j] + p);
      for (int r = 0; r < RI; ++r) {
        const vf av = simd::load(a[r] + p);
        for (int j = 0; j < NJ; ++j) acc[r][j] = simd::fma(av, bv[j], acc[r][j]);
      }
    }
    if (p < k) {
      const int rest = int(k - p);
      vf bv[NJ];
      for (int j = 0; j < NJ; ++j) bv[j] = simd::load_part(b[j] + p, rest);
      for (int r = 0; r < RI; ++r) {
        const vf av = simd::load_part(a[r] + p, rest);
        for (int j = 0; j < NJ; ++j) acc[r][j] = simd::fma(av, bv[j], acc[r][j]);
      }
    }
    constexpr int kSums = (RI * NJ + 7) / 8 * 8;  // whole groups of 8 for simd::hsum8
    vf all[kSums];
    for (int q = 0; q < kSums; ++q) all[q] = q < RI * NJ ? acc[q / NJ][q % NJ] : simd::zero();
#if defined(__AVX512F__)
    if (contiguous) {  // sum q = r * NJ + j is C[i0 + r][j]: one vector of the block's outputs
      vf r = simd::hsum8_lanes(all);
      if constexpr (kSums == 16)
        r = _mm512_insertf32x8(r, _mm512_castps512_ps256(simd::hsum8_lanes(all + 8)), 1);
      const int cnt = rows * NJ;
      float* c = C + i0 * NJ;
      r = simd::add(accumulate ? simd::load_part(c, cnt) : simd::zero(), r);  // as (C or 0) + sum below
      if (ep.bias) r = simd::add(r, bias_lanes);
      if (ep.relu) r = simd::max(simd::zero(), r);
      simd::store_part(c, r, cnt);
      continue;
    }
#endif
    float sum[kSums];
    for (int q = 0; q < kSums; q += 8) simd::hsum8(all + q, sum + q);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < n; ++j) {
        float* c = C + (i0 + r) * ldc + j;
        *c = ep.apply((accumulate ? *c : 0.0f) + sum[r * NJ + j], i0 + r, j);
      }
  }
}

inline void narrow(bool ta, bool tb, Index m, int n, Index k, const float* A, Index lda, const float* B, Index ldb,
                   float* C, Index ldc, bool accumulate, const Epilogue& ep) {
  if (ta) {
    switch (n * 2 + tb) {
#define NATIVEBP_NARROW(r) \
  case 2 * r: narrow_ta<r, Src::Cols>(m, k, A, lda, B, ldb, C, ldc, accumulate, ep); break; \
  case 2 * r + 1: narrow_ta<r, Src::Rows>(m, k, A, lda, B, ldb, C, ldc, accumulate, ep); break;
      NATIVEBP_NARROW(1) NATIVEBP_NARROW(2) NATIVEBP_NARROW(3) NATIVEBP_NARROW(4)
#undef NATIVEBP_NARROW
      default: break;
    }
    return;
  }
  const float* bt = B;
  Index ldbt = ldb;
  if (!tb) {  // the columns of B, gathered into n contiguous rows
    float* t = scratch(1).get(std::size_t(n * k));
    for (Index p = 0; p < k; ++p)
      for (int j = 0; j < n; ++j) t[j * k + p] = B[p * ldb + j];
    bt = t;
    ldbt = k;
  }
  if (n == 1) narrow_dot<1>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, ep);
  else if (n == 2) narrow_dot<2>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, ep);
  else narrow_dot<4>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, ep);
}

// ---------------------------------------------------------------- a narrow layer's backward
// Y = X W + b with n <= kNarrowFused outputs, X the output of a ReLU or Tanh: the weight gradient
// G (in x n) (+)= X^T dY and dX = (dY W^T) * act'(X) in one pass over X, each row loaded once
// for both (as two products, X is read twice and tiny's step spent 8% in the first). The
// arithmetic of narrow_ta and short_k, so the same bits: G's sums run down the rows by FMAs
// from zero and are then added to G; dX sums over the n outputs by FMAs from zero, then the mask.
constexpr int kNarrowFused = 2;

template <int N>
inline void narrow_backward_through(Index m, Index in, const float* X, const float* dY, const float* Wt, float* G,
                                    bool accumulate, float* dX, bool tanh) {
  constexpr int V = W == 16 ? 4 : 2, L = V * W;  // 2 x N x V accumulators and weights: 16 of 32 / 8 of 16
  alignas(64) float wt[N * L];   // W^T for this block of columns, zero past `in`
  alignas(64) float sums[N * L];
  for (Index c0 = 0; c0 < in; c0 += L) {
    const int cols = int(std::min<Index>(L, in - c0));
    for (int j = 0; j < N; ++j)
      for (int q = 0; q < L; ++q) wt[j * L + q] = q < cols ? Wt[(c0 + q) * N + j] : 0.0f;
    vf w[N][V], g[N][V];
    for (int j = 0; j < N; ++j)
      for (int v = 0; v < V; ++v) w[j][v] = simd::load(wt + j * L + v * W), g[j][v] = simd::zero();
    for (Index i = 0; i < m; ++i) {
      const float* x = X + i * in + c0;
      float* dx = dX + i * in + c0;
      vf d[N];
      for (int j = 0; j < N; ++j) d[j] = simd::set1(dY[i * N + j]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const int col = v * W, cnt = std::min(W, cols - col);
        if (cnt <= 0) break;
        const vf xv = cnt == W ? simd::load(x + col) : simd::load_part(x + col, cnt);
        vf r = simd::zero();
        for (int j = 0; j < N; ++j) {
          g[j][v] = simd::fma(d[j], xv, g[j][v]);  // dL/dW[p][j] += X[i][p] dY[i][j]
          r = simd::fma(d[j], w[j][v], r);         // (dY W^T)[i][p]
        }
        r = tanh ? simd::mul(r, simd::one_minus_square(xv)) : simd::keep_positive(xv, r);
        if (cnt == W) simd::store(dx + col, r);
        else simd::store_part(dx + col, r, cnt);
      }
    }
    for (int j = 0; j < N; ++j)
      for (int v = 0; v < V; ++v) simd::store(sums + j * L + v * W, g[j][v]);
    for (int q = 0; q < cols; ++q)
      for (int j = 0; j < N; ++j) {
        float* gp = G + (c0 + q) * N + j;
        *gp = (accumulate ? *gp : 0.0f) + sums[j * L + q];
      }
  }
}

// Whether narrow_backward_through serves this layer: few outputs, more than kNarrow inputs (so
// that the products it replaces are narrow_ta's and short_k's), little enough work for one thread.
inline bool fuses_narrow_backward(Index m, Index in, Index n) {
  return n <= kNarrowFused && in > kNarrow && double(m) * double(in) * double(n) < kParallelWork;
}

inline void narrow_backward_through(Index m, Index in, Index n, const float* X, const float* dY, const float* W,
                                    float* G, bool accumulate, float* dX, bool tanh) {
  if (n == 1) narrow_backward_through<1>(m, in, X, dY, W, G, accumulate, dX, tanh);
  else narrow_backward_through<2>(m, in, X, dY, W, G, accumulate, dX, tanh);
}

// ---------------------------------------------------------------- large products
// Packs op(B) (and op(A) unless read in place), in parallel, then computes MC x NC tiles of C as
// pool tasks, several per thread so that a late or busy thread delays little.
inline void packed(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                   float* C, Index ldc, bool accumulate, const Epilogue& ep, int threads) {
  const Index pa = ceil_div(m, MR), pb = ceil_div(n, NR);
  // A row-major A is read in place (saves copying it: 10% on 1024 x 784 x 256) unless its rows
  // are a multiple of 4 KiB apart: then the MR rows would fall into the same L1 sets.
  const bool direct_a = !ta && (lda * Index(sizeof(float))) % 4096 != 0;
  float* Ap = direct_a ? nullptr : scratch(0).get(std::size_t(pa * MR * k));
  float* Bp = scratch(1).get(std::size_t(pb * NR * k));
  const Index per = std::max<Index>(1, (Index(1) << 14) / (k * MR));  // a packing task copies >= 16K floats
  const Index ta_tasks = direct_a ? 0 : ceil_div(pa, per), tb_tasks = ceil_div(pb, per);
  threads::parallel_for(ta_tasks + tb_tasks, [&](Index t) {
    if (t < ta_tasks) {
      for (Index ip = t * per; ip < std::min(pa, (t + 1) * per); ++ip) pack_a(ta, A, lda, m, k, ip, Ap + ip * MR * k);
    } else {
      t -= ta_tasks;
      for (Index jp = t * per; jp < std::min(pb, (t + 1) * per); ++jp) pack_b(tb, B, ldb, n, k, jp, Bp + jp * NR * k);
    }
  }, threads);
  const Index tm = ceil_div(pa, MC), tn = ceil_div(pb, NC);
  threads::parallel_for(tm * tn, [&](Index t) {
    const Index ip0 = (t / tn) * MC, jp0 = (t % tn) * NC;
    const Index ip1 = std::min(pa, ip0 + MC), jp1 = std::min(pb, jp0 + NC);
    for (Index pc = 0; pc < k; pc += KC) {
      const Index kc = std::min(KC, k - pc);
      const bool acc = accumulate || pc > 0;
      const Epilogue e = ep.part(pc == 0, pc + kc >= k);
      for (Index ip = ip0; ip < ip1; ++ip) {
        const int rows = int(std::min<Index>(MR, m - ip * MR));
        for (Index jp = jp0; jp < jp1; ++jp) {
          const int cols = int(std::min<Index>(NR, n - jp * NR));
          float* c = C + ip * MR * ldc + jp * NR;
          const float* b = Bp + jp * NR * k + pc * NR;
          if (direct_a)
            rows_kernel<Src::Rows, true>(rows, kc, A + ip * MR * lda + pc, lda, b, 0, c, ldc, cols, acc,
                                         e.at(ip * MR, jp * NR));
          else
            micro<MR, NV, Src::Packed, true>(kc, Ap + ip * MR * k + pc * MR, 0, b, 0, c, ldc, rows, cols, acc,
                                             e.at(ip * MR, jp * NR));
        }
      }
    }
  }, threads);
}

// C = epilogue(op(A) op(B) (+ C if accumulate)).
inline void sgemm(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                  float* C, Index ldc, bool accumulate, const Epilogue& ep) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) C[i * ldc + j] = ep.apply(accumulate ? C[i * ldc + j] : 0.0f, i, j);
    return;
  }
  if (n <= kNarrow && m > n) return narrow(ta, tb, m, int(n), k, A, lda, B, ldb, C, ldc, accumulate, ep);
  const double work = double(m) * double(n) * double(k);
  if (work <= kDirectWork || m <= 2 || k <= kShortK) return small(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate, ep);
  packed(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate, ep, threads_for(work));
}

// C = op(A) op(B) (+ C if accumulate) (+ bias broadcast over rows, if not null).
inline void sgemm(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                  float* C, Index ldc, bool accumulate = false, const float* bias = nullptr) {
  Epilogue ep;
  ep.bias = bias;
  sgemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate, ep);
}

}  // namespace nativebp::gemm
