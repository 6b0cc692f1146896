// Single-precision GEMM, row-major: C (m x n) = op(A) op(B) [+ C] [+ bias row], where op(A) is
// m x k (A, or A^T when ta) and op(B) is k x n (B, or B^T when tb). Written for the engine's
// three products: Y = X W (forward), dW += X^T dY, dX = dY W^T.
//
// Large products pack op(A) into MR-row panels and op(B) into NR-column panels (contiguous,
// zero-padded; the transposes happen here), then tiles of C are computed as pool tasks by a
// register-blocked micro-kernel (MR x NR accumulators). Small products skip packing A (and B
// unless transposed) and stay on the calling thread: there, copying costs more than it saves.
// Each tile is computed the same way whichever thread runs it: results do not depend on the
// thread count.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <cstring>

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
#ifndef NBP_KC
#define NBP_KC 512
#endif
#ifndef NBP_MC
#define NBP_MC 8
#endif
#ifndef NBP_NC
#define NBP_NC 4
#endif
// k-block: an A micro-panel (MR x KC, 16 KiB) stays in L1 while B panels stream from L2.
// Tiles of MC x NC panels (64 x 128 for AVX-512): their B block (KC x NC, 256 KiB) stays in L2.
constexpr Index KC = NBP_KC;

// Products below this many multiply-adds are not packed; below kParallelWork they stay on one thread.
constexpr double kDirectWork = 1 << 19, kParallelWork = 1 << 18;

enum class Src { Packed, Rows, Cols };  // how A's (i, p) is found: packed panel, A[i][p] or A[p][i]

// C block (m <= R rows, n <= V*W columns) from R x kc of op(A) and kc x V*W of op(B).
template <int R, int V, Src SA, bool PackedB>
inline void micro(Index kc, const float* a, Index lda, const float* b, Index ldb, float* c, Index ldc, int m, int n,
                  bool accumulate, const float* bias) {
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
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      const int col = v * W, cnt = std::min(W, n - col);
      if (cnt <= 0) break;
      vf r = acc[i][v];
      if (cnt == W) {
        if (accumulate) r = simd::add(r, simd::load(cr + col));
        if (bias) r = simd::add(r, simd::load(bias + col));
        simd::store(cr + col, r);
      } else {
        if (accumulate) r = simd::add(r, simd::load_part(cr + col, cnt));
        if (bias) r = simd::add(r, simd::load_part(bias + col, cnt));
        simd::store_part(cr + col, r, cnt);
      }
    }
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

// ---------------------------------------------------------------- drivers
// Unpacked A, B unpacked (row-major op(B)) or packed; one thread.
template <Src SA, bool PackedB>
inline void direct(Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                   bool accumulate, const float* bias) {
  auto a_at = [&](Index i) { return SA == Src::Rows ? A + i * lda : A + i; };
  auto b_at = [&](Index j) { return PackedB ? B + (j / NR) * k * NR : B + j; };
  if (m < MR && m <= 2) {  // a row or two (inference of one sample): wider blocks keep more FMAs in flight
    constexpr int V1 = 4;
    for (Index j = 0; j < n; j += V1 * W) {
      const int cols = int(std::min<Index>(V1 * W, n - j));
      if (!PackedB && cols == V1 * W) {
        if (m == 1) micro<1, V1, SA, false>(k, a_at(0), lda, b_at(j), ldb, C + j, ldc, 1, cols, accumulate, bias ? bias + j : nullptr);
        else micro<2, V1, SA, false>(k, a_at(0), lda, b_at(j), ldb, C + j, ldc, 2, cols, accumulate, bias ? bias + j : nullptr);
        continue;
      }
      for (Index jj = j; jj < j + cols; jj += NR) {
        const int c2 = int(std::min<Index>(NR, n - jj));
        if (m == 1) micro<1, NV, SA, PackedB>(k, a_at(0), lda, b_at(jj), ldb, C + jj, ldc, 1, c2, accumulate, bias ? bias + jj : nullptr);
        else micro<2, NV, SA, PackedB>(k, a_at(0), lda, b_at(jj), ldb, C + jj, ldc, 2, c2, accumulate, bias ? bias + jj : nullptr);
      }
    }
    return;
  }
  for (Index i = 0; i < m; i += MR) {
    const int rows = int(std::min<Index>(MR, m - i));
    for (Index j = 0; j < n; j += NR) {
      const int cols = int(std::min<Index>(NR, n - j));
      const float* bj = bias ? bias + j : nullptr;
      float* cij = C + i * ldc + j;
      if (rows == MR) {
        micro<MR, NV, SA, PackedB>(k, a_at(i), lda, b_at(j), ldb, cij, ldc, rows, cols, accumulate, bj);
        continue;
      }
      // A has only `rows` rows left: a kernel of exactly that height never reads past them.
      switch (rows) {
#define NATIVEBP_ROWS(r) \
  case r: micro<(r < MR ? r : 1), NV, SA, PackedB>(k, a_at(i), lda, b_at(j), ldb, cij, ldc, rows, cols, accumulate, bj); break;
        NATIVEBP_ROWS(1) NATIVEBP_ROWS(2) NATIVEBP_ROWS(3) NATIVEBP_ROWS(4) NATIVEBP_ROWS(5) NATIVEBP_ROWS(6)
        NATIVEBP_ROWS(7)
#undef NATIVEBP_ROWS
        default: break;
      }
    }
  }
}

inline Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

// Writes a C element: c (+ old c) (+ bias).
inline void put(float* c, float v, bool accumulate, const float* bias, Index j) {
  *c = (accumulate ? *c : 0.0f) + v + (bias ? bias[j] : 0.0f);
}

// ---------------------------------------------------------------- narrow outputs (n <= 4)
// With n < W most vector lanes would idle; vectorize along another dimension instead.
constexpr int kNarrow = 4;

// op(A) = A^T (A stored k x m, contiguous along i): C^T = op(B)^T A is a normal product with
// vectors along i; computed in a small buffer, then added transposed into C.
template <int R, Src SB>
inline void narrow_ta(Index m, Index k, const float* A, Index lda, const float* B, Index ldb, float* C, Index ldc,
                      bool accumulate, const float* bias) {
  constexpr int V = 4, L = V * W;
  alignas(64) float t[R * L];
  for (Index i0 = 0; i0 < m; i0 += L) {
    const int cols = int(std::min<Index>(L, m - i0));
    micro<R, V, SB, false>(k, B, ldb, A + i0, lda, t, L, R, cols, false, nullptr);
    for (int j = 0; j < R; ++j)
      for (int ii = 0; ii < cols; ++ii) put(C + (i0 + ii) * ldc + j, t[j * L + ii], accumulate, bias, j);
  }
}

// op(A) = A (rows contiguous along p): each C[i][j] is a dot product of a row of A and a column
// of op(B), given here as rows bt[j * ldbt + p]. 4 rows x NJ columns of C per block.
template <int NJ>
inline void narrow_dot(Index m, int n, Index k, const float* A, Index lda, const float* bt, Index ldbt, float* C,
                       Index ldc, bool accumulate, const float* bias) {
  constexpr int RI = 4;
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
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < n; ++j) put(C + (i0 + r) * ldc + j, simd::hsum(acc[r][j]), accumulate, bias, j);
  }
}

inline void narrow(bool ta, bool tb, Index m, int n, Index k, const float* A, Index lda, const float* B, Index ldb,
                   float* C, Index ldc, bool accumulate, const float* bias) {
  if (ta) {
    switch (n * 2 + tb) {
#define NATIVEBP_NARROW(r) \
  case 2 * r: narrow_ta<r, Src::Cols>(m, k, A, lda, B, ldb, C, ldc, accumulate, bias); break; \
  case 2 * r + 1: narrow_ta<r, Src::Rows>(m, k, A, lda, B, ldb, C, ldc, accumulate, bias); break;
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
  if (n == 1) narrow_dot<1>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, bias);
  else if (n == 2) narrow_dot<2>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, bias);
  else narrow_dot<4>(m, n, k, A, lda, bt, ldbt, C, ldc, accumulate, bias);
}

// Threads worth using for `work` multiply-adds: one below kParallelWork, the pool above.
inline int threads_for(double work) { return work < kParallelWork ? 1 : threads::num_threads(); }

// Packs both operands (in parallel), then computes MC x NC tiles of C as pool tasks.
inline void packed(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                   float* C, Index ldc, bool accumulate, const float* bias, int threads) {
  const Index pa = ceil_div(m, MR), pb = ceil_div(n, NR);
  float* Ap = scratch(0).get(std::size_t(pa * MR * k));
  float* Bp = scratch(1).get(std::size_t(pb * NR * k));
  // A packing task covers enough panels to copy >= 16K floats.
  const Index per = std::max<Index>(1, (Index(1) << 14) / (k * MR));
  const Index ta_tasks = ceil_div(pa, per), tb_tasks = ceil_div(pb, per);
  threads::parallel_for(ta_tasks + tb_tasks, [&](Index t) {
    if (t < ta_tasks) {
      for (Index ip = t * per; ip < std::min(pa, (t + 1) * per); ++ip) pack_a(ta, A, lda, m, k, ip, Ap + ip * MR * k);
    } else {
      t -= ta_tasks;
      for (Index jp = t * per; jp < std::min(pb, (t + 1) * per); ++jp) pack_b(tb, B, ldb, n, k, jp, Bp + jp * NR * k);
    }
  }, threads);
  // Tiles of MC x NC panels, several per thread so a late or busy thread delays little.
  const Index mc = NBP_MC, nc = NBP_NC;
  const Index tm = ceil_div(pa, mc), tn = ceil_div(pb, nc);
  threads::parallel_for(tm * tn, [&](Index t) {
    const Index ip0 = (t / tn) * mc, jp0 = (t % tn) * nc;
    const Index ip1 = std::min(pa, ip0 + mc), jp1 = std::min(pb, jp0 + nc);
    for (Index pc = 0; pc < k; pc += KC) {
      const Index kc = std::min(KC, k - pc);
      const bool acc = accumulate || pc > 0;
      for (Index ip = ip0; ip < ip1; ++ip) {
        const float* a = Ap + ip * MR * k + pc * MR;
        const int rows = int(std::min<Index>(MR, m - ip * MR));
        for (Index jp = jp0; jp < jp1; ++jp) {
          const int cols = int(std::min<Index>(NR, n - jp * NR));
          micro<MR, NV, Src::Packed, true>(kc, a, 0, Bp + jp * NR * k + pc * NR, 0, C + ip * MR * ldc + jp * NR, ldc,
                                           rows, cols, acc, pc == 0 && bias ? bias + jp * NR : nullptr);
        }
      }
    }
  }, threads);
}

// C = op(A) op(B) (+ C if accumulate) (+ bias broadcast over rows, if not null).
inline void sgemm(bool ta, bool tb, Index m, Index n, Index k, const float* A, Index lda, const float* B, Index ldb,
                  float* C, Index ldc, bool accumulate = false, const float* bias = nullptr) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index i = 0; i < m && !accumulate; ++i)
      for (Index j = 0; j < n; ++j) C[i * ldc + j] = bias ? bias[j] : 0.0f;
    if (accumulate && bias)
      for (Index i = 0; i < m; ++i)
        for (Index j = 0; j < n; ++j) C[i * ldc + j] += bias[j];
    return;
  }
  if (n <= kNarrow && m > n) {
    narrow(ta, tb, m, int(n), k, A, lda, B, ldb, C, ldc, accumulate, bias);
    return;
  }
  const double work = double(m) * double(n) * double(k);
  if (work <= kDirectWork || m <= 2) {
    const float* b = B;
    Index ldbb = ldb;
    if (tb) {  // small B^T: pack it (the kernel wants contiguous rows of op(B))
      const Index pb = ceil_div(n, NR);
      float* Bp = scratch(1).get(std::size_t(pb * NR * k));
      for (Index jp = 0; jp < pb; ++jp) pack_b(true, B, ldb, n, k, jp, Bp + jp * NR * k);
      b = Bp;
      ldbb = 0;
    }
    if (ta) {
      if (tb) direct<Src::Cols, true>(m, n, k, A, lda, b, ldbb, C, ldc, accumulate, bias);
      else direct<Src::Cols, false>(m, n, k, A, lda, b, ldbb, C, ldc, accumulate, bias);
    } else {
      if (tb) direct<Src::Rows, true>(m, n, k, A, lda, b, ldbb, C, ldc, accumulate, bias);
      else direct<Src::Rows, false>(m, n, k, A, lda, b, ldbb, C, ldc, accumulate, bias);
    }
    return;
  }
  packed(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate, bias, threads_for(work));
}

}  // namespace nativebp::gemm
