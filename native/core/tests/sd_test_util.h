// Tiny assertion helpers for the sampler ctests: each test is a plain executable that
// returns the number of failed checks.
#pragma once
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "brainlatent/error.h"

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
inline bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
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

namespace sdtest {
// The message of the brainlatent::Error that fn throws, checking its code (a failed check otherwise).
template <typename Fn>
std::string error_of(Fn&& fn, ::brainlatent::ErrorCode expected) {
  try {
    fn();
  } catch (const ::brainlatent::Error& e) {
    if (e.code() != expected) std::fprintf(stderr, "unexpected error code, message: %s\n", e.what());
    SD_CHECK(e.code() == expected);
    return e.what();
  }
  SD_CHECK(!"expected an error");
  return "";
}
}  // namespace sdtest
