// One threaded BLAS/LAPACK call at a time in the process, callers served in arrival order.
// Threaded OpenBLAS (0.3.21 here) has one queue of work for its thread pool: when several application
// threads call it at once, each spins in exec_blas_async for a free slot, and on two cores four
// concurrent per-fold-primal fits took 64 s against 0.9 s for one (the engine runs up to four jobs
// at once, native/addon/kit.cpp). So linalg.cpp holds a BlasTurn around each call: that call has
// every BLAS thread, the others' jobs wait for their turn asleep (not spinning) and interleave with it
// call by call, and their work outside BLAS (parallel_for loops) goes on meanwhile. A turn is one call
// (a GEMM past linalg's slice size is one turn per slice), so no job waits long for another; FIFO, so
// none is starved by a neighbour's back-to-back calls. A thread that must not sleep (the JS thread of
// a synchronous call: predict(), the bench probes) never waits for a turn (BlasWithoutWaiting).
// A fork (a process spawned while jobs compute) waits for the running call and starts no other: OpenBLAS
// stops its pool before a fork, and a call running on it then hung (blas_turn.cpp).
#pragma once
#include <cstdint>

namespace brainlatent::linalg {

class BlasTurn {
 public:
  // Waits for this thread's turn. While waiting it polls the thread's CancelScope (long_ops.h): a
  // cancelled job leaves the queue and throws its Cancelled error instead of running one more call.
  // Nested turns on one thread pass through (the outer one holds). With BLAS single-threaded (its
  // own thread count, blas_threads(): OPENBLAS_NUM_THREADS=1 or setThreads(1); calls do not share a
  // pool) no turn is taken and calls run side by side. Under BlasWithoutWaiting it does not wait (below).
  BlasTurn();
  ~BlasTurn();
  BlasTurn(const BlasTurn&) = delete;
  BlasTurn& operator=(const BlasTurn&) = delete;

 private:
  bool held_ = false;
  bool beside_ = false;  // running beside the holder, without the turn (BlasWithoutWaiting)
};

// For its lifetime, this thread's BlasTurns never wait. The JS thread calls the engine synchronously
// (RidgeModel.predict(), the service's predict workers, sgemmGflops): queued behind four fits' calls
// it slept for seconds, and the event loop with it. A call takes the turn when it is free and nobody
// waits for it (the jobs' next calls then wait for this one), and otherwise runs at once beside the
// call that holds it: two callers share BLAS's pool for one call, which threaded OpenBLAS tolerates
// (four spun); the waiting jobs keep their order and none is starved. Scopes nest.
class BlasWithoutWaiting {
 public:
  BlasWithoutWaiting();
  ~BlasWithoutWaiting();
  BlasWithoutWaiting(const BlasWithoutWaiting&) = delete;
  BlasWithoutWaiting& operator=(const BlasWithoutWaiting&) = delete;

 private:
  bool outer_;
};

// For tests: how many threads wait for a turn now, how many turns have been taken so far, and how
// many calls ran beside the turn's holder (BlasWithoutWaiting).
int blas_turns_waiting();
std::uint64_t blas_turns_taken();
std::uint64_t blas_calls_beside();

}  // namespace brainlatent::linalg
