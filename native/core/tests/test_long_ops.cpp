// A fit's hooks in long linear algebra (long_ops.h): poll_cancel() under nested CancelScopes, an
// eigendecomposition that stops between its blocks when the fit's flag is set while it runs (it
// would otherwise run to its end: ~1 s here, a minute at NSD's 8,859 samples in float64), and the
// fractions it reports between its blocks under a StepProgress.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "brainlatent/long_ops.h"
#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "test_util.h"

using namespace brainlatent;

namespace {

// A symmetric n×n matrix with eigenvalues in [n/2, 3n/2]: entries in [−0.5, 0.5] from a fixed
// sequence, n added to the diagonal (Gershgorin).
template <typename T>
std::vector<T> symmetric(std::int64_t n) {
  std::vector<T> a(static_cast<std::size_t>(n * n));
  std::uint32_t x = 7;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j <= i; ++j) {
      x = x * 1664525u + 1013904223u;
      const T v = static_cast<T>((static_cast<double>(x >> 8) / 16777216.0) - 0.5 + (i == j ? static_cast<double>(n) : 0.0));
      a[static_cast<std::size_t>(i * n + j)] = v;
      a[static_cast<std::size_t>(j * n + i)] = v;
    }
  return a;
}

bool cancelled(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code() == ErrorCode::Cancelled;
  }
  return false;
}

// Row-major op(A)·op(B) in float64, for m×k and k×n operands stored as given.
template <typename T>
std::vector<double> product(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const std::vector<T>& a, std::int64_t lda,
                            const std::vector<T>& b, std::int64_t ldb) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t l = 0; l < k; ++l)
        s += static_cast<double>(ta ? a[static_cast<std::size_t>(l * lda + i)] : a[static_cast<std::size_t>(i * lda + l)]) *
             static_cast<double>(tb ? b[static_cast<std::size_t>(j * ldb + l)] : b[static_cast<std::size_t>(l * ldb + j)]);
      c[static_cast<std::size_t>(i * n + j)] = s;
    }
  return c;
}

template <typename T>
std::vector<T> filled(std::size_t size, std::uint32_t seed) {
  std::vector<T> v(size);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<T>(static_cast<double>(seed >> 8) / 16777216.0 - 0.5);
  }
  return v;
}

// Sliced (slice size 1 flop: as many slices as C's larger dimension allows) against the float64
// product, every transposition, C wider and taller than it is long, leading dimensions past the width.
template <typename T>
void check_sliced_gemm(double tol) {
  const double before = linalg::set_gemm_slice_flops(1);
  for (const auto& [m, n, k] : std::vector<std::array<std::int64_t, 3>>{{37, 5, 11}, {3, 41, 7}, {1, 13, 1}, {29, 29, 2}})
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const std::int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 4;
      const auto a = filled<T>(static_cast<std::size_t>((ta ? k : m) * lda), 11), b = filled<T>(static_cast<std::size_t>((tb ? n : k) * ldb), 17);
      std::vector<T> c(static_cast<std::size_t>(m * ldc), T(9));
      linalg::gemm(ta, tb, m, n, k, T(1), a.data(), lda, b.data(), ldb, T(0), c.data(), ldc);
      const auto ref = product(ta, tb, m, n, k, a, lda, b, ldb);
      double err = 0;
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j)
          err = std::max(err, std::fabs(static_cast<double>(c[static_cast<std::size_t>(i * ldc + j)]) - ref[static_cast<std::size_t>(i * n + j)]));
        // (the padding past the width is untouched)
        for (std::int64_t j = n; j < ldc && i < m - 1; ++j) CHECK(c[static_cast<std::size_t>(i * ldc + j)] == T(9));
      }
      CHECK(err < tol);
    }
  linalg::set_gemm_slice_flops(before);
}

}  // namespace

int main() {
  test::run("poll_cancel throws only inside a scope whose flag is set, the innermost scope deciding", [] {
    std::atomic<bool> flag{false}, other{true};
    CHECK(!cancelled([] { poll_cancel(); }));
    {
      CancelScope s(&flag, "ridge fit");
      CHECK(!cancelled([] { poll_cancel(); }));
      flag = true;
      std::string msg;
      CHECK(cancelled([] { poll_cancel(); }, &msg));
      CHECK(msg == "ridge fit cancelled");
      {
        CancelScope inner(nullptr, "inner");
        CHECK(!cancelled([] { poll_cancel(); }));
      }
      CHECK(cancelled([] { poll_cancel(); }));
      // (another thread has no scope: the flag is this thread's)
      bool elsewhere = true;
      std::thread([&] { elsewhere = cancelled([] { poll_cancel(); }); }).join();
      CHECK(!elsewhere);
    }
    CHECK(!cancelled([] { poll_cancel(); }));
    (void)other;
  });

  test::run("an eigendecomposition under a set flag stops at its first block; without one it completes", [] {
    const std::int64_t n = 600;  // (the blocked path: 512 and up)
    std::vector<float> a = symmetric<float>(n), w(static_cast<std::size_t>(n));
    std::atomic<bool> flag{true};
    {
      CancelScope s(&flag, "fit");
      CHECK(cancelled([&] { linalg::eigh(n, a.data(), w.data()); }));
    }
    a = symmetric<float>(n);
    CHECK(!cancelled([&] { linalg::eigh(n, a.data(), w.data()); }));
    CHECK(w[0] >= 0.5f * n && w[static_cast<std::size_t>(n - 1)] <= 1.5f * n && w[static_cast<std::size_t>(n - 1)] > w[0]);
  });

  test::run("a flag set while a float64 eigendecomposition runs stops it before its end", [] {
    // n = 2,500 in float64 takes ~1 s on two cores; the flag is set 30 ms in, during the reduction.
    const std::int64_t n = 2500;
    std::vector<double> a = symmetric<double>(n), w(static_cast<std::size_t>(n));
    std::atomic<bool> flag{false};
    std::thread setter([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      flag = true;
    });
    bool stopped = false;
    {
      CancelScope s(&flag, "fit");
      stopped = cancelled([&] { linalg::eigh(n, a.data(), w.data()); });
    }
    setter.join();
    CHECK(stopped);
  });

  test::run("an eigendecomposition reports its fraction done between blocks, in order, ending at 1", [] {
    const std::int64_t n = 600;
    std::vector<float> a = symmetric<float>(n), w(static_cast<std::size_t>(n));
    std::vector<double> seen;
    {
      StepProgress p([&](double f) { seen.push_back(f); });
      linalg::eigh(n, a.data(), w.data());
    }
    // 18 reduction panels of 32, the steps between, 5 reflector blocks of 128, the end
    CHECK(seen.size() >= 20);
    CHECK(!seen.empty() && seen.front() >= 0 && seen.back() == 1.0);
    for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] >= seen[i - 1]);
    // (no scope: nothing reported, and step_done still polls the cancel flag)
    seen.clear();
    a = symmetric<float>(n);
    linalg::eigh(n, a.data(), w.data());
    CHECK(seen.empty());
    std::atomic<bool> flag{true};
    CancelScope s(&flag, "fit");
    CHECK(cancelled([] { step_done(0.5); }));
  });

  test::run("a GEMM in slices (past the slice size) equals the whole product, every transposition", [] {
    check_sliced_gemm<float>(1e-5);
    check_sliced_gemm<double>(1e-12);
  });

  test::run("a symmetric rank-k product in column blocks (past the slice size) equals the whole one", [] {
    for (const auto& [rows, k] : std::vector<std::array<std::int64_t, 2>>{{23, 31}, {40, 9}, {1, 7}, {17, 1}}) {
      const std::int64_t lda = k + 3;
      const auto a = filled<float>(static_cast<std::size_t>(rows * lda), 5);
      // AᵀA (k×k) and AAᵀ (rows×rows), against the float64 products, both triangles
      std::vector<float> g(static_cast<std::size_t>(k * k)), o(static_cast<std::size_t>(rows * rows));
      const double before = linalg::set_gemm_slice_flops(1);
      linalg::gram(rows, k, a.data(), lda, 1.0f, 0.0f, g.data(), k);
      linalg::outer_gram(rows, k, a.data(), lda, 1.0f, 0.0f, o.data(), rows);
      linalg::set_gemm_slice_flops(before);
      const auto gr = product(true, false, k, k, rows, a, lda, a, lda), orf = product(false, true, rows, rows, k, a, lda, a, lda);
      double eg = 0, eo = 0;
      for (std::size_t i = 0; i < g.size(); ++i) eg = std::max(eg, std::fabs(g[i] - gr[i]));
      for (std::size_t i = 0; i < o.size(); ++i) eo = std::max(eo, std::fabs(o[i] - orf[i]));
      CHECK(eg < 1e-5 && eo < 1e-5);
    }
  });

  test::run("a sliced GEMM stops under a set flag, and when one is set while it runs; a small one never polls", [] {
    const std::int64_t n = 1200;  // 3.5 GFLOP in float64 (a double's flop counts twice): 18 slices of 0.4 GFLOP
    const auto a = filled<double>(static_cast<std::size_t>(n * n), 3), b = filled<double>(static_cast<std::size_t>(n * n), 4);
    std::vector<double> c(static_cast<std::size_t>(n * n));
    const double before = linalg::set_gemm_slice_flops(4e8);
    std::atomic<bool> flag{true};
    {
      CancelScope s(&flag, "fit");
      CHECK(cancelled([&] { linalg::gemm(false, false, n, n, n, 1.0, a.data(), n, b.data(), n, 0.0, c.data(), n); }));
      // (below twice the slice size: one BLAS call, no poll)
      CHECK(!cancelled([&] { linalg::gemm(false, false, 100, 100, 100, 1.0, a.data(), n, b.data(), n, 0.0, c.data(), n); }));
    }
    flag = false;
    std::thread setter([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      flag = true;
    });
    bool stopped = false;
    {
      CancelScope s(&flag, "fit");
      stopped = cancelled([&] {
        for (int r = 0; r < 20; ++r) linalg::gemm(false, true, n, n, n, 1.0, a.data(), n, b.data(), n, 0.0, c.data(), n);
      });
    }
    setter.join();
    CHECK(stopped);
    linalg::set_gemm_slice_flops(before);
  });

  test::run("at the default slice size a GEMM past 64 GFLOP polls (an abort waits for one slice, not the whole call)", [] {
    // (66 GFLOP: one call until s39's default, 0.2–0.45 s on two cores; with the flag set it stops before its
    // first slice computes anything)
    const std::int64_t m = 4096, n = 4096, k = 1967;
    const auto a = filled<float>(static_cast<std::size_t>(m * k), 3), b = filled<float>(static_cast<std::size_t>(k * n), 4);
    std::vector<float> c(static_cast<std::size_t>(m * n));
    std::atomic<bool> flag{true};
    CancelScope s(&flag, "fit");
    CHECK(cancelled([&] { linalg::gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n); }));
  });

  return test::finish();
}
