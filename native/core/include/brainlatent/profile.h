// Wall-clock profile of the engine's phases and backend operations, compiled in and off unless
// the environment sets BRAINLATENT_PROFILE (read once): then every Scope adds its time (and the
// flops it is given) to a named total, and the ridge engine prints the totals to stderr after a
// fit; BRAINLATENT_PROFILE=2 also prints every GEMM (shape, time, rate). Off, a Scope is one
// branch. Scopes nest (a route phase contains its operations): totals are inclusive.
#pragma once
#include <chrono>
#include <string>

namespace brainlatent::profile {

bool enabled();
// BRAINLATENT_PROFILE=2: also one line per GEMM.
bool each_call();
// Adds `seconds` and `flops` to the total of `name` (a string literal: kept by address).
void add(const char* name, double seconds, double flops, long faults = 0);
// The process's minor page faults so far (every thread's).
long minor_faults();
// The totals since the last reset, one line each, longest first; then reset.
std::string report_and_reset();

class Scope {
 public:
  explicit Scope(const char* name, double flops = 0) : name_(enabled() ? name : nullptr), flops_(flops) {
    if (name_) t0_ = std::chrono::steady_clock::now(), faults0_ = minor_faults();
  }
  ~Scope() {
    if (name_) add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(), flops_, minor_faults() - faults0_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  double flops_;
  long faults0_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace brainlatent::profile
