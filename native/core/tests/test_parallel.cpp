// parallel_for and ridge_cv_fit_many when a thread cannot be started (EAGAIN: the process's thread limit, a
// container's pids cap): the work runs on the threads there are and gives the same result. Before, the
// std::thread vector was destroyed with joinable threads in it and the process ended in std::terminate.
// The failures come from this executable's own pthread_create, which comes before libc's for the whole
// process (as an LD_PRELOAD shim's would): armed, every `g_fail_every`-th thread start fails.
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"
#include "test_util.h"

using namespace brainlatent;

namespace {
std::atomic<int> g_fail_every{0};  // 0: disarmed
std::atomic<int> g_starts{0}, g_refused{0};
}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  using Real = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "pthread_create"));
  const int every = g_fail_every.load();
  if (every > 0 && ++g_starts % every == 0) {
    ++g_refused;
    return EAGAIN;
  }
  return real(thread, attr, start, arg);
}

namespace {

// Arms the failing pthread_create for its scope.
struct FailingStarts {
  explicit FailingStarts(int every) {
    g_starts = 0;
    g_refused = 0;
    g_fail_every = every;
  }
  ~FailingStarts() { g_fail_every = 0; }
};

// A value per index that depends on the index only, written by whichever thread runs its chunk.
std::vector<double> squares(std::int64_t n) {
  std::vector<double> out(static_cast<std::size_t>(n), -1.0);
  parallel_for(0, n, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) out[static_cast<std::size_t>(i)] = std::sqrt(static_cast<double>(i)) * 3.0;
  });
  return out;
}

void test_parallel_for_spawn_fails() {
  const std::vector<double> expected = squares(1000);
  for (int every : {1, 2, 3}) {  // every start refused; the 2nd, 4th…; the 3rd
    std::vector<double> got;
    {
      const FailingStarts armed(every);
      got = squares(1000);
      CHECK(g_refused.load() > 0);  // (the interposer ran: the test is not vacuous)
    }
    CHECK(got == expected);
  }
}

// An error thrown in a chunk that the calling thread took over still reaches the caller, once every worker has
// stopped.
void test_parallel_for_error_on_caller() {
  std::atomic<int> ran{0};
  std::string message;
  {
    const FailingStarts armed(2);
    CHECK(test::throws(
        [&] {
          parallel_for(0, 8, 1, [&](std::int64_t b, std::int64_t e) {
            ran += static_cast<int>(e - b);
            if (b <= 7 && 7 < e) throw std::runtime_error("last chunk failed");
          });
        },
        &message));
  }
  CHECK(message == "last chunk failed");
  CHECK(ran.load() == 8);
}

struct Problem {
  std::int64_t n, p, t;
  std::vector<float> x, y;
};

Problem make_problem(std::int64_t n, std::int64_t p, std::int64_t t, unsigned seed) {
  test::Rng rng(seed);
  Problem d{n, p, t, std::vector<float>(static_cast<std::size_t>(n * p)), std::vector<float>(static_cast<std::size_t>(n * t))};
  for (auto& v : d.x) v = static_cast<float>(rng.normal());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < t; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < std::min<std::int64_t>(p, 5); ++k) s += d.x[static_cast<std::size_t>(i * p + k)] * (j + k + 1) * 0.1;
      d.y[static_cast<std::size_t>(i * t + j)] = static_cast<float>(s + rng.normal());
    }
  return d;
}

void test_fit_many_spawn_fails() {
  std::vector<Problem> data;
  data.push_back(make_problem(90, 30, 40, 1));
  data.push_back(make_problem(120, 150, 60, 2));
  data.push_back(make_problem(70, 12, 300, 3));
  data.push_back(make_problem(64, 20, 20, 4));
  std::vector<RidgeProblem> problems;
  for (const Problem& d : data) {
    RidgeOptions o;
    o.alphas = {0.1, 1, 10, 100, 1000};
    const auto folds = contiguous_folds(d.n, 4);
    o.folds.assign(folds.begin(), folds.end());
    o.n_folds = 4;
    o.backend = "cpu";
    problems.push_back({{d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o});
  }
  const std::vector<RidgeResult> expected = ridge_cv_fit_many(problems, 4);
  for (int every : {1, 2}) {
    std::vector<RidgeResult> got;
    {
      const FailingStarts armed(every);
      got = ridge_cv_fit_many(problems, 4);
      CHECK(g_refused.load() > 0);
    }
    CHECK(got.size() == expected.size());
    for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i) {
      CHECK(got[i].best_alphas == expected[i].best_alphas);
      CHECK(got[i].coef.size() == expected[i].coef.size());
      double worst = 0, scale = 0;
      for (std::size_t k = 0; k < std::min(got[i].coef.size(), expected[i].coef.size()); ++k) {
        worst = std::max(worst, std::fabs(static_cast<double>(got[i].coef[k]) - expected[i].coef[k]));
        scale = std::max(scale, std::fabs(static_cast<double>(expected[i].coef[k])));
      }
      CHECK(worst <= 1e-5 * scale);
    }
  }
}

}  // namespace

int main() {
  // (4 engine threads whatever the machine, so that parallel_for starts workers; BLAS's own threads are started
  // here and by the first fit, before any start is made to fail)
  set_engine_threads(4);
  test::run("parallel_for: a worker that cannot be started leaves its chunks to the caller", test_parallel_for_spawn_fails);
  test::run("parallel_for: an error in a chunk the caller took over reaches the caller", test_parallel_for_error_on_caller);
  test::run("ridge_cv_fit_many: a worker that cannot be started leaves its problems to the others", test_fit_many_spawn_fails);
  return test::finish();
}
