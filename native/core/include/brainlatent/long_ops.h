// What a fit reaches into long linear algebra with: its cancel flag and its progress. The ridge engine
// checks its flag and reports progress between its large operations; one of those, a symmetric
// eigendecomposition, takes a minute in float64 at NSD's sample count (8,859), which no abort should
// wait for and no progress bar should sit still through. So the engine makes its flag and a progress
// callback the calling thread's (CancelScope, StepProgress), and linalg's blocked loops (the
// tridiagonal reduction's panels, the back-transform's reflector blocks) call step_done() between
// blocks, and the tridiagonal divide and conquer between its merges above ?stedc's whole-call order
// (linalg::tridiagonal_eigh). GEMMs and rank-k products past linalg's slice size (seconds each at
// NSD's scale) poll between their slices (linalg::set_gemm_slice_flops). Still one call each: every
// operation below those sizes (a GEMM at most ~0.45 s on two cores at 150 GFLOP/s, a rank-k product ~0.85 s).
#pragma once
#include <atomic>
#include <functional>
#include <string>

namespace brainlatent {

// The calling thread's cancellation (its innermost CancelScope's flag and name; a null flag when none), for a thread
// it starts: a CancelScope made from it there polls the same flag. parallel_for hands it to its workers, whose
// poll_cancel() would otherwise see no scope (scopes are per thread) and never stop.
struct CancelSource {
  const std::atomic<bool>* flag = nullptr;
  std::string what;
};
CancelSource current_cancel();

// For its lifetime, poll_cancel() on this thread throws Error(ErrorCode::Cancelled, what + " cancelled")
// once *flag is set. Scopes nest (the inner one holds until it ends); a null flag polls nothing.
class CancelScope {
 public:
  CancelScope(const std::atomic<bool>* flag, std::string what);
  explicit CancelScope(const CancelSource& source) : CancelScope(source.flag, source.what) {}
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* flag_;
  std::string what_;
  const CancelScope* outer_;
  friend void poll_cancel();
  friend CancelSource current_cancel();
};

// Throws if the innermost CancelScope of this thread has been cancelled; otherwise returns at once.
void poll_cancel();

// For its lifetime, step_done(f) on this thread calls report(f), f the fraction of the current long
// operation done (0..1). Scopes nest like CancelScope's; an empty function reports nothing.
class StepProgress {
 public:
  explicit StepProgress(std::function<void(double)> report);
  ~StepProgress();
  StepProgress(const StepProgress&) = delete;
  StepProgress& operator=(const StepProgress&) = delete;

 private:
  std::function<void(double)> report_;
  const StepProgress* outer_;
  friend void step_done(double);
};

// Between the blocks of a long operation: poll_cancel(), then report the fraction done.
void step_done(double fraction);

}  // namespace brainlatent
