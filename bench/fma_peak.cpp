// The FMA peak of one core: 12 independent chains of register-only fused multiply-adds, so
// neither latency nor memory limits them. The ceiling every GEMM figure in RESULTS.md is
// measured against (an AVX-512 or AVX2 build, whichever the compiler flags allow).
//
//     g++ -O2 -march=native bench/fma_peak.cpp -o /tmp/fma_peak && /tmp/fma_peak
#include <chrono>
#include <cstdio>

#if defined(__AVX512F__)
constexpr int kFloats = 16;
#else
constexpr int kFloats = 8;
#endif

int main() {
  const long n = 20000000;
  double best = 1e30;
  for (int round = 0; round < 10; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
#if defined(__AVX512F__)
#define NATIVEBP_FMA(r) "vfmadd231ps %%zmm14, %%zmm15, %%zmm" #r "\n"
    asm volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n vxorps %%xmm15, %%xmm15, %%xmm15\n mov %0, %%rcx\n 1:\n"
#else
#define NATIVEBP_FMA(r) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #r "\n"
    asm volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n vxorps %%xmm15, %%xmm15, %%xmm15\n mov %0, %%rcx\n 1:\n"
#endif
                 NATIVEBP_FMA(0) NATIVEBP_FMA(1) NATIVEBP_FMA(2) NATIVEBP_FMA(3) NATIVEBP_FMA(4) NATIVEBP_FMA(5)
                 NATIVEBP_FMA(6) NATIVEBP_FMA(7) NATIVEBP_FMA(8) NATIVEBP_FMA(9) NATIVEBP_FMA(10) NATIVEBP_FMA(11)
                 "dec %%rcx\n jnz 1b\n"
                 :
                 : "r"(n)
                 : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                   "xmm11", "xmm14", "xmm15", "memory");
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    if (ns < best) best = ns;
  }
  const double fmas = 12.0 * n;
  std::printf("%d-float FMA: %.3f ns each, peak %.1f GFLOP/s float32 (best of 10 runs of %.0f M)\n", kFloats,
              best / fmas, fmas * kFloats * 2 / best, fmas / 1e6);
}
