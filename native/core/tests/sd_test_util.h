// Tiny assertion helpers for the sampler ctests: each test is a plain executable that
// returns the number of failed checks.
#pragma once
#include <cmath>
#include <cstdio>
#include <string>

namespace sdtest {
inline int& failures() {
  static int n = 0;
  return n;
}
inline void check(bool ok, const char* expr, const char* file, int line) {
  if (!ok) {
    ++failures();
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
  }
}
inline void check_near(double a, double b, double tol, const char* ea, const char* eb, const char* file, int line) {
  if (!(std::fabs(a - b) <= tol)) {
    ++failures();
    std::fprintf(stderr, "%s:%d: %s = %.10g, %s = %.10g, |diff| %.3g > %.3g\n", file, line, ea, a, eb, b,
                 std::fabs(a - b), tol);
  }
}
inline int finish(const char* name) {
  if (failures() == 0) std::printf("%s: all checks passed\n", name);
  else std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
  return failures() == 0 ? 0 : 1;
}
}  // namespace sdtest

#define SD_CHECK(expr) ::sdtest::check(static_cast<bool>(expr), #expr, __FILE__, __LINE__)
#define SD_CHECK_NEAR(a, b, tol) ::sdtest::check_near((a), (b), (tol), #a, #b, __FILE__, __LINE__)
#define SD_CHECK_THROWS(stmt, expected_code)                                                  \
  do {                                                                               \
    bool _thrown = false;                                                            \
    try {                                                                            \
      stmt;                                                                          \
    } catch (const ::brainlatent::Error& e) {                                        \
      _thrown = e.code() == (expected_code);                                                  \
      if (!_thrown) std::fprintf(stderr, "wrong code, message: %s\n", e.what());    \
    }                                                                                \
    ::sdtest::check(_thrown, "throws " #expected_code ": " #stmt, __FILE__, __LINE__);       \
  } while (0)
