// The process's BLAS turns (blas_turn.h): one holder at a time, waiters served in arrival order (a
// holder that asks again goes behind them), a cancelled waiter leaves the queue with its Cancelled
// error, nested turns on one thread pass through, with BLAS single-threaded (its own count) no turn is
// taken, and a thread that must not wait (BlasWithoutWaiting) runs beside the holder. Then
// linalg's calls from four threads at once (eigh, gemm, gram, Cholesky solves) give the same bits as
// the same calls one after another, and a fork beside a threaded call waits for it (OpenBLAS stops its pool
// before a fork: a call running then hung).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "brainlatent/blas_turn.h"
#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/parallel.h"
#include "test_util.h"

using namespace brainlatent;
using linalg::BlasTurn;

namespace {

// Until pred() holds (another thread's progress: no timing is asserted, only waited for). A minute
// without it is a failure, not a hang (a rule broken the other way round: a turn never given).
template <typename Pred>
void wait_until(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!pred() && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(pred());
}

std::vector<float> values(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t x = seed;
  for (auto& e : v) {
    x = x * 1664525u + 1013904223u;
    e = static_cast<float>(static_cast<double>(x >> 8) / 16777216.0 - 0.5);
  }
  return v;
}

// One job's linear algebra on its own data: a Gram matrix, its eigendecomposition (the blocked path,
// n ≥ 512), a product with the eigenvectors and a Cholesky solve. Every output, in order.
std::vector<float> job(std::uint32_t seed) {
  const std::int64_t rows = 700, n = 560, t = 40;
  const std::vector<float> x = values(static_cast<std::size_t>(rows * n), seed), y = values(static_cast<std::size_t>(rows * t), seed + 1);
  std::vector<float> g(static_cast<std::size_t>(n * n)), w(static_cast<std::size_t>(n)), xty(static_cast<std::size_t>(n * t));
  linalg::gram(rows, n, x.data(), n, 1.0f, 0.0f, g.data(), n);
  std::vector<float> spd = g;
  for (std::int64_t i = 0; i < n; ++i) spd[static_cast<std::size_t>(i * n + i)] += 1.0f;
  linalg::gemm(true, false, n, t, rows, 1.0f, x.data(), n, y.data(), t, 0.0f, xty.data(), t);
  linalg::eigh(n, g.data(), w.data());
  std::vector<float> proj(static_cast<std::size_t>(n * t));
  linalg::gemm(false, false, n, t, n, 1.0f, g.data(), n, xty.data(), t, 0.0f, proj.data(), t);
  CHECK(linalg::cholesky(n, spd.data()));
  linalg::cholesky_solve_cols(n, spd.data(), t, xty.data(), t);
  std::vector<float> out;
  for (const auto* v : {&w, &g, &proj, &xty}) out.insert(out.end(), v->begin(), v->end());
  return out;
}

}  // namespace

int main() {
  // (turns are taken only with more than one engine thread: this machine may have one core)
  set_engine_threads(2);

  test::run("one holder at a time across threads, every turn counted", [] {
    const std::uint64_t before = linalg::blas_turns_taken();
    std::atomic<int> inside{0}, most{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          BlasTurn turn;
          const int now = ++inside;
          int m = most.load();
          while (now > m && !most.compare_exchange_weak(m, now)) {
          }
          std::this_thread::yield();
          --inside;
        }
      });
    for (auto& th : threads) th.join();
    CHECK(most.load() == 1);
    CHECK(linalg::blas_turns_taken() - before == 800);
    CHECK(linalg::blas_turns_waiting() == 0);
  });

  test::run("waiters are served in arrival order, and a holder asking again goes behind them", [] {
    std::mutex m;
    std::vector<std::string> order;
    auto note = [&](const char* who) {
      std::lock_guard<std::mutex> l(m);
      order.push_back(who);
    };
    std::thread b, c;
    {
      BlasTurn mine;
      b = std::thread([&] {
        BlasTurn turn;
        note("b");
      });
      wait_until([] { return linalg::blas_turns_waiting() == 1; });
      c = std::thread([&] {
        BlasTurn turn;
        note("c");
      });
      wait_until([] { return linalg::blas_turns_waiting() == 2; });
    }
    {
      BlasTurn again;  // (b and c queued first: this waits for both)
      note("main");
    }
    b.join();
    c.join();
    CHECK((order == std::vector<std::string>{"b", "c", "main"}));
  });

  test::run("a waiter whose job is cancelled leaves the queue with its Cancelled error; the next in line goes on", [] {
    std::atomic<bool> flag{false};
    std::string message;
    bool cancelled = false, c_ran = false;
    std::thread b, c;
    {
      BlasTurn mine;
      b = std::thread([&] {
        CancelScope scope(&flag, "ridge fit");
        try {
          BlasTurn turn;
        } catch (const Error& e) {
          cancelled = e.code() == ErrorCode::Cancelled;
          message = e.what();
        }
      });
      wait_until([] { return linalg::blas_turns_waiting() == 1; });
      c = std::thread([&] {
        BlasTurn turn;
        c_ran = true;
      });
      wait_until([] { return linalg::blas_turns_waiting() == 2; });
      flag = true;
      b.join();  // (while this thread still holds the turn: b left without it)
      CHECK(cancelled);
      CHECK(message == "ridge fit cancelled");
      CHECK(linalg::blas_turns_waiting() == 1);
    }
    c.join();
    CHECK(c_ran);
    CHECK(linalg::blas_turns_waiting() == 0);
  });

  test::run("a turn inside a turn on one thread passes through", [] {
    const std::uint64_t before = linalg::blas_turns_taken();
    {
      BlasTurn outer;
      BlasTurn inner;
    }
    CHECK(linalg::blas_turns_taken() - before == 1);
    bool other = false;
    std::thread([&] {
      BlasTurn turn;
      other = true;
    }).join();
    CHECK(other);
  });

  test::run("with one engine thread no turn is taken: two threads hold theirs at once", [] {
    set_engine_threads(1);
    const std::uint64_t before = linalg::blas_turns_taken();
    std::atomic<int> inside{0};
    auto hold = [&] {
      BlasTurn turn;
      ++inside;
      wait_until([&] { return inside.load() == 2; });
    };
    std::thread a(hold), b(hold);
    a.join();
    b.join();
    CHECK(linalg::blas_turns_taken() == before);
    set_engine_threads(2);
  });

  test::run("with BLAS single-threaded by its own count no turn is taken, though the engine counts two threads", [] {
    // (OPENBLAS_NUM_THREADS=1 with the engine left at every core: engine_threads() is 2, BLAS's pool is one thread,
    // and its calls had waited for turns they do not need)
    linalg::set_blas_threads(1);
    CHECK(engine_threads() == 2);
    CHECK(linalg::blas_threads() == 1);
    const std::uint64_t before = linalg::blas_turns_taken();
    std::atomic<int> inside{0};
    auto hold = [&] {
      BlasTurn turn;
      ++inside;
      wait_until([&] { return inside.load() == 2; });
    };
    std::thread a(hold), b(hold);
    a.join();
    b.join();
    CHECK(linalg::blas_turns_taken() == before);
    linalg::set_blas_threads(2);
    CHECK(linalg::blas_threads() == 2);
  });

  test::run("a thread that must not wait runs beside the holder, behind nobody; a free turn it takes, and jobs wait for it", [] {
    const std::uint64_t beside = linalg::blas_calls_beside();
    std::atomic<bool> ran{false};
    std::thread b;
    {
      BlasTurn mine;
      b = std::thread([] { BlasTurn turn; });  // (a job's call, queued)
      wait_until([] { return linalg::blas_turns_waiting() == 1; });
      std::thread sync([&] {
        const linalg::BlasWithoutWaiting no_wait;
        BlasTurn turn;
        BlasTurn nested;  // (passes through)
        ran = true;
      });
      wait_until([&] { return ran.load(); });  // (while this thread still holds the turn)
      sync.join();
      CHECK(linalg::blas_calls_beside() - beside == 1);
      CHECK(linalg::blas_turns_waiting() == 1);  // (b still first in line: nobody was passed)
    }
    b.join();
    // The turn free: the synchronous call takes it, and a job's call waits for it.
    const std::uint64_t taken = linalg::blas_turns_taken();
    std::atomic<bool> job_ran{false};
    std::thread job;
    {
      const linalg::BlasWithoutWaiting no_wait;
      BlasTurn turn;
      CHECK(linalg::blas_turns_taken() - taken == 1);
      job = std::thread([&] {
        BlasTurn t;
        job_ran = true;
      });
      wait_until([] { return linalg::blas_turns_waiting() == 1; });
      CHECK(!job_ran.load());
    }
    job.join();
    CHECK(job_ran.load());
    CHECK(linalg::blas_calls_beside() - beside == 1);
    wait_until([] { return linalg::blas_turns_waiting() == 0; });
  });

  test::run("linalg's calls from four threads at once give the bits of the same calls one after another", [] {
    std::vector<std::vector<float>> serial, concurrent(4);
    for (std::uint32_t k = 0; k < 4; ++k) serial.push_back(job(11 + 7 * k));
    std::vector<std::thread> threads;
    for (std::uint32_t k = 0; k < 4; ++k) threads.emplace_back([&, k] { concurrent[k] = job(11 + 7 * k); });
    for (auto& th : threads) th.join();
    for (std::size_t k = 0; k < 4; ++k) CHECK(concurrent[k] == serial[k]);
    CHECK(serial[0] != serial[1]);
  });

  test::run("forks beside another thread's threaded calls wait for the running call: the calls go on, every fork ends", [] {
    CHECK(linalg::blas_threads() > 1);  // (OpenBLAS's pool: what its fork handler stops)
    std::atomic<bool> stop{false}, done{false};
    std::atomic<int> calls{0};
    // (without the handlers the fork itself hung in OpenBLAS's: a failure after a minute, not a hang)
    std::thread watchdog([&] {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      while (!done && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!done) {
        std::fprintf(stderr, "FAILED: a fork or the BLAS calls beside it hung (%d calls)\n", calls.load());
        std::_Exit(1);
      }
    });
    std::thread caller([&] {
      const std::int64_t n = 256;
      const std::vector<float> a = values(static_cast<std::size_t>(n * n), 5);
      std::vector<float> c(static_cast<std::size_t>(n * n));
      while (!stop) {
        linalg::gemm(false, false, n, n, n, 1.0f, a.data(), n, a.data(), n, 0.0f, c.data(), n);
        ++calls;
      }
    });
    wait_until([&] { return calls > 0; });
    for (int i = 0; i < 100; ++i) {
      const pid_t pid = fork();
      if (pid == 0) _exit(0);
      int status = 0;
      CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    const int before = calls;
    wait_until([&] { return calls > before + 3; });
    stop = true;
    caller.join();
    done = true;
    watchdog.join();
  });

  set_engine_threads(0);
  return test::finish();
}
