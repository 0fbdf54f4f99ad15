// Minimal assertion helpers for the ctest executables (no framework, no Node).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace test {

inline int& failures() {
  static int f = 0;
  return f;
}

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++test::failures();                                                  \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
  do {                                                                                        \
    double _a = (a), _b = (b);                                                                \
    if (!(std::fabs(_a - _b) <= (tol))) {                                                     \
      std::fprintf(stderr, "%s:%d: %s = %.9g vs %s = %.9g (tol %.3g)\n", __FILE__, __LINE__, #a, _a, #b, _b, \
                   (double)(tol));                                                            \
      ++test::failures();                                                                     \
    }                                                                                         \
  } while (0)

template <typename Fn>
bool throws(Fn&& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (message) *message = e.what();
    return true;
  }
  return false;
}

inline void run(const char* name, const std::function<void()>& fn) {
  int before = failures();
  fn();
  std::printf("%s %s\n", failures() == before ? "ok  " : "FAIL", name);
}

inline int finish() {
  if (failures()) std::printf("%d check(s) failed\n", failures());
  return failures() ? 1 : 0;
}

// Deterministic pseudo-random numbers (xorshift + Box-Muller) for test data.
struct Rng {
  unsigned long long s;
  explicit Rng(unsigned long long seed) : s(seed * 2654435761ull + 1) {}
  double uniform() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (s >> 11) * (1.0 / 9007199254740992.0);
  }
  double normal() {
    double u = uniform() + 1e-300, v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

// Solves A X = B for symmetric positive definite A (m × m, row-major) and B (m × rhs), by an
// unblocked float64 Cholesky: the plain reference the solvers' tests compare against.
inline std::vector<double> spd_solve(std::vector<double> a, std::vector<double> b, long m, long rhs) {
  for (long j = 0; j < m; ++j) {
    double s = a[j * m + j];
    for (long k = 0; k < j; ++k) s -= a[j * m + k] * a[j * m + k];
    a[j * m + j] = std::sqrt(s);
    for (long i = j + 1; i < m; ++i) {
      double v = a[i * m + j];
      for (long k = 0; k < j; ++k) v -= a[i * m + k] * a[j * m + k];
      a[i * m + j] = v / a[j * m + j];
    }
  }
  for (long c = 0; c < rhs; ++c) {
    for (long i = 0; i < m; ++i) {
      double v = b[i * rhs + c];
      for (long k = 0; k < i; ++k) v -= a[i * m + k] * b[k * rhs + c];
      b[i * rhs + c] = v / a[i * m + i];
    }
    for (long i = m - 1; i >= 0; --i) {
      double v = b[i * rhs + c];
      for (long k = i + 1; k < m; ++k) v -= a[k * m + i] * b[k * rhs + c];
      b[i * rhs + c] = v / a[i * m + i];
    }
  }
  return b;
}

// An environment variable set for a scope and put back (unset, or its old value) when it ends, a throw included.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_.c_str(), old_.c_str(), 1);
    else unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace test
