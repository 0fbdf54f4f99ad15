// The process's BLAS turns (blas_turn.h): a FIFO queue of waiting threads under one mutex.
#include "brainlatent/blas_turn.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include <pthread.h>

#include "brainlatent/blas_core.h"
#include "brainlatent/linalg.h"
#include "brainlatent/long_ops.h"

namespace brainlatent::linalg {

namespace {

struct Turns {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::uint64_t> queue;  // tickets waiting, in arrival order
  std::uint64_t next_ticket = 0;
  std::uint64_t taken = 0;
  std::uint64_t beside = 0;  // calls that ran beside the holder (BlasWithoutWaiting)
  bool busy = false;         // a thread holds the turn
  int active = 0;            // threads inside a call now: the holder and those beside it
  bool forking = false;      // a fork waits for the calls to end (fork_prepare): no new call starts
};

Turns& turns() {
  static Turns* t = new Turns;  // (never destroyed: engine threads may still take turns during exit)
  return *t;
}

thread_local int t_depth = 0;         // turns this thread holds (nested ones pass through)
thread_local bool t_no_wait = false;  // under a BlasWithoutWaiting

// Forks wait for BLAS. OpenBLAS's own fork handler stops its thread pool before every fork(); a threaded call
// running then on another thread (an engine job's, while the JS thread spawns a process) waited for ever on
// threads that were gone: the fit hung, or the forking thread with it (RidgeCV fits in a loop beside a spawn
// every 100 ms stopped after 5-6 fits in each of two runs; with these handlers: 888 fits in 20 s). Handlers
// registered after OpenBLAS's run before it: the fork waits until no call runs (one call or slice: under
// ~1.3 s on two cores), holding the turns' mutex across the fork so that none starts, and OpenBLAS then stops
// an idle pool (the next call starts it again). A thread that forks from inside a call (never the engine's)
// cannot wait for itself and forks as before.
thread_local bool t_fork_held = false;  // this thread forks holding the turns' mutex (fork_prepare)

void fork_prepare() {
  if (t_depth > 0) return;
  Turns& t = turns();
  std::unique_lock<std::mutex> lock(t.m);
  t.forking = true;
  t.cv.wait(lock, [&] { return t.active == 0; });
  lock.release();  // (held across the fork; fork_parent and fork_child unlock it)
  t_fork_held = true;
}

void fork_parent() {
  if (!t_fork_held) return;
  t_fork_held = false;
  Turns& t = turns();
  t.forking = false;
  t.m.unlock();
  t.cv.notify_all();
}

void fork_child() {
  if (!t_fork_held) return;
  t_fork_held = false;
  Turns& t = turns();  // (the forking thread is the child's only one: nobody else holds or waits)
  t.forking = false;
  t.busy = false;
  t.active = 0;
  t.queue.clear();
  t.m.unlock();
}

void register_fork_handlers() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(fork_prepare, fork_parent, fork_child); });
}

// How often a waiting thread looks at its cancel flag: a wait is at most a few other jobs' calls
// (each under ~1.3 s on two cores, linalg's slices), and an abort should not wait for them all.
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

}  // namespace

BlasTurn::BlasTurn() {
  blas_core();  // (settled before the process's first BLAS call: it may re-initialise OpenBLAS)
  if (t_depth > 0) {
    ++t_depth;
    held_ = true;
    return;
  }
  // (BLAS's own count, not the engine's: with OPENBLAS_NUM_THREADS=1 the engine still counts every core)
  if (blas_threads() <= 1) return;  // single-threaded BLAS: no shared pool to spin on
  register_fork_handlers();
  Turns& t = turns();
  std::unique_lock<std::mutex> lock(t.m);
  t.cv.wait(lock, [&] { return !t.forking; });  // (a fork's moment: no call may start, not even beside)
  if (!t.busy && t.queue.empty()) {
    t.busy = true;
  } else if (t_no_wait) {
    ++t.beside;
    ++t.active;
    t_depth = 1;
    held_ = beside_ = true;
    return;
  } else {
    const std::uint64_t ticket = t.next_ticket++;
    t.queue.push_back(ticket);
    while (t.busy || t.forking || t.queue.front() != ticket) {
      t.cv.wait_for(lock, kCancelPoll);
      try {
        poll_cancel();
      } catch (...) {
        t.queue.erase(std::find(t.queue.begin(), t.queue.end(), ticket));
        lock.unlock();
        t.cv.notify_all();  // (the next in line may now be at the front)
        throw;
      }
    }
    t.queue.pop_front();
    t.busy = true;
  }
  ++t.active;
  ++t.taken;
  t_depth = 1;
  held_ = true;
}

BlasTurn::~BlasTurn() {
  if (!held_) return;
  if (--t_depth > 0) return;
  Turns& t = turns();
  {
    std::lock_guard<std::mutex> lock(t.m);
    --t.active;
    if (!beside_) t.busy = false;  // (beside: the turn is another's)
  }
  t.cv.notify_all();
}

BlasWithoutWaiting::BlasWithoutWaiting() : outer_(t_no_wait) { t_no_wait = true; }

BlasWithoutWaiting::~BlasWithoutWaiting() { t_no_wait = outer_; }

int blas_turns_waiting() {
  Turns& t = turns();
  std::lock_guard<std::mutex> lock(t.m);
  return static_cast<int>(t.queue.size());
}

std::uint64_t blas_turns_taken() {
  Turns& t = turns();
  std::lock_guard<std::mutex> lock(t.m);
  return t.taken;
}

std::uint64_t blas_calls_beside() {
  Turns& t = turns();
  std::lock_guard<std::mutex> lock(t.m);
  return t.beside;
}

}  // namespace brainlatent::linalg
