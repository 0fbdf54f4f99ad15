// One threaded BLAS/LAPACK call at a time in the process, callers served in arrival order.
// Threaded OpenBLAS (0.3.21 here) has one queue of work for its thread pool: when several application
// threads call it at once, each spins in exec_blas_async for a free slot, and on two cores four
// concurrent per-fold-primal fits took 64 s against 0.9 s for one (the engine runs up to four jobs
// at once, native/addon/kit.cpp). So linalg.cpp holds a BlasTurn around each call: that call has
// every BLAS thread, the others' jobs wait for their turn asleep (not spinning) and interleave with it
// call by call, and their work outside BLAS (parallel_for loops) goes on meanwhile. A turn is one call
// (a GEMM past linalg's slice size is one turn per slice), so no job waits long for another; FIFO, so
// none is starved by a neighbour's back-to-back calls.
#pragma once
#include <cstdint>

namespace brainlatent::linalg {

class BlasTurn {
 public:
  // Waits for this thread's turn. While waiting it polls the thread's CancelScope (long_ops.h): a
  // cancelled job leaves the queue and throws its Cancelled error instead of running one more call.
  // Nested turns on one thread pass through (the outer one holds). With one engine thread (BLAS
  // single-threaded: calls do not share its pool) no turn is taken and calls run side by side.
  BlasTurn();
  ~BlasTurn();
  BlasTurn(const BlasTurn&) = delete;
  BlasTurn& operator=(const BlasTurn&) = delete;

 private:
  bool held_ = false;
};

// For tests: how many threads wait for a turn now, and how many turns have been taken so far.
int blas_turns_waiting();
std::uint64_t blas_turns_taken();

}  // namespace brainlatent::linalg
