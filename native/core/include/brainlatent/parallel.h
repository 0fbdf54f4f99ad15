// A minimal parallel-for over index ranges for the memory-bound loops that BLAS does not
// cover (scoring reductions, centring, the image metrics). Threads are spawned per call: every call
// site does milliseconds of work, so the spawn cost does not show. The workers run under the
// caller's CancelScope (long_ops.h): a poll_cancel() in `fn` stops at the caller's flag, and the
// Cancelled error is rethrown on the caller's thread once every worker has stopped. A worker that cannot be
// started leaves its chunks to the calling thread: the result is the same, only slower.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include "brainlatent/long_ops.h"

namespace brainlatent {

int engine_threads();            // threads the engine uses (BLAS and parallel_for)
void set_engine_threads(int n);  // 0 = all cores

template <typename Fn>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t min_chunk, Fn&& fn) {
  const std::int64_t n = end - begin;
  if (n <= 0) return;
  int threads = engine_threads();
  std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n / std::max<std::int64_t>(1, min_chunk)));
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  const CancelSource cancel = current_cancel();
  const std::int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;  // (the non-empty ones)
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(chunks));
  auto run_chunk = [&](std::int64_t c) {
    const std::int64_t b = begin + c * step, e = std::min(end, b + step);
    try {
      fn(b, e);
    } catch (...) {
      errors[static_cast<std::size_t>(c)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(chunks));  // (no reallocation, which could throw, once a worker runs)
  // A thread that cannot be started (EAGAIN: the process's thread limit, a container's pids cap) leaves its
  // chunk and the later ones to this thread: the workers started reference this frame, so they are joined
  // before it ends whatever happens (a std::thread destroyed while joinable terminates the process).
  std::int64_t spawned = 0;
  for (; spawned < chunks; ++spawned) {
    const std::int64_t c = spawned;
    try {
      pool.emplace_back([&, c] {
        const CancelScope scope(cancel);
        run_chunk(c);
      });
    } catch (...) {
      break;
    }
  }
  for (std::int64_t c = spawned; c < chunks; ++c) run_chunk(c);  // (under the caller's own CancelScope)
  for (auto& t : pool) t.join();
  for (auto& err : errors)
    if (err) std::rethrow_exception(err);
}

}  // namespace brainlatent
