// Cancellation inside long linear algebra. The ridge engine checks its cancel flag between its large
// operations; one of those, a symmetric eigendecomposition, takes a minute in float64 at NSD's sample
// count (8,859), which no abort should wait for. So the engine makes its flag the calling thread's
// for the fit (CancelScope), and linalg's blocked loops (the tridiagonal reduction's panels, the
// back-transform's reflector blocks) call poll_cancel() between blocks.
#pragma once
#include <atomic>
#include <string>

namespace brainlatent {

// For its lifetime, poll_cancel() on this thread throws Error(ErrorCode::Cancelled, what + " cancelled")
// once *flag is set. Scopes nest (the inner one holds until it ends); a null flag polls nothing.
class CancelScope {
 public:
  CancelScope(const std::atomic<bool>* flag, std::string what);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* flag_;
  std::string what_;
  const CancelScope* outer_;
  friend void poll_cancel();
};

// Throws if the innermost CancelScope of this thread has been cancelled; otherwise returns at once.
void poll_cancel();

}  // namespace brainlatent
