// A fit's hooks in long linear algebra (long_ops.h): poll_cancel() under nested CancelScopes, an
// eigendecomposition that stops between its blocks when the fit's flag is set while it runs (it
// would otherwise run to its end: ~1 s here, a minute at NSD's 8,859 samples in float64), and the
// fractions it reports between its blocks under a StepProgress.
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

  return test::finish();
}
