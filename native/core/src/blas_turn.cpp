// The process's BLAS turns (blas_turn.h): a FIFO queue of waiting threads under one mutex.
#include "brainlatent/blas_turn.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

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
};

Turns& turns() {
  static Turns* t = new Turns;  // (never destroyed: engine threads may still take turns during exit)
  return *t;
}

thread_local int t_depth = 0;         // turns this thread holds (nested ones pass through)
thread_local bool t_no_wait = false;  // under a BlasWithoutWaiting

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
  Turns& t = turns();
  std::unique_lock<std::mutex> lock(t.m);
  if (!t.busy && t.queue.empty()) {
    t.busy = true;
  } else if (t_no_wait) {
    ++t.beside;
    t_depth = 1;
    held_ = beside_ = true;
    return;
  } else {
    const std::uint64_t ticket = t.next_ticket++;
    t.queue.push_back(ticket);
    while (t.busy || t.queue.front() != ticket) {
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
  ++t.taken;
  t_depth = 1;
  held_ = true;
}

BlasTurn::~BlasTurn() {
  if (!held_) return;
  if (--t_depth > 0) return;
  if (beside_) return;  // (the turn is another's)
  Turns& t = turns();
  {
    std::lock_guard<std::mutex> lock(t.m);
    t.busy = false;
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
