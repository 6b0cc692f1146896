// Seeded, portable random numbers: the same seed gives the same stream on every platform
// (std:: distributions are implementation-defined, so we draw from the raw 64-bit engine).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>

namespace nativebp {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}
  void seed(std::uint64_t s) { engine_.seed(s); has_spare_ = false; }
  std::uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  // Standard normal by the Box-Muller transform (portable, unlike std::normal_distribution).
  double normal() {
    if (has_spare_) { has_spare_ = false; return spare_; }
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  // Uniform integer in [0, n) without modulo bias (Lemire's method).
  std::uint64_t below(std::uint64_t n) {
    unsigned __int128 m = (unsigned __int128)engine_() * n;
    std::uint64_t low = (std::uint64_t)m;
    if (low < n) {
      const std::uint64_t threshold = -n % n;
      while (low < threshold) { m = (unsigned __int128)engine_() * n; low = (std::uint64_t)m; }
    }
    return (std::uint64_t)(m >> 64);
  }
  // The full generator state as text, for saving a training run and resuming it exactly.
  std::string state() const {
    std::ostringstream os;
    os << engine_ << ' ' << has_spare_ << ' ' << std::hexfloat << spare_;
    return os.str();
  }
  void set_state(const std::string& text) {
    std::istringstream is(text);
    std::mt19937_64 e;
    bool has = false;
    double spare = 0;
    is >> e >> has;
    if (!is) throw std::invalid_argument("rng state: not a saved generator state");  // short: e half-read
    std::string sp;
    is >> sp;
    spare = sp.empty() ? 0.0 : std::strtod(sp.c_str(), nullptr);
    engine_ = e; has_spare_ = has; spare_ = spare;
  }
  // Fisher-Yates shuffle of an index array.
  template <typename I>
  void shuffle(I* a, std::size_t n) {
    for (std::size_t i = n; i > 1; --i) std::swap(a[i - 1], a[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace nativebp
