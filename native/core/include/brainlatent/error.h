// Errors raised by the engine. The core never aborts the process: every failure is a
// brainlatent::Error with a code that the addon maps onto a JS error class.
#pragma once
#include <stdexcept>
#include <string>

namespace brainlatent {

enum class ErrorCode {
  InvalidArgument,
  ShapeMismatch,
  NonFinite,
  OutOfMemory,
  BackendUnavailable,
  NumericalFailure,
  OrtFailure,
  InvalidModel,  // a model file ONNX Runtime cannot parse as an ONNX model (truncated, corrupt, not ONNX)
  Cancelled,
  Internal,  // an unexpected failure inside the engine (a library's exception): a bug to report
};

const char* error_code_name(ErrorCode code);

// Why an OutOfMemory arose; a caller decides from it whether trying again can help.
//   Budget:     a memory budget (memoryBudget, a backend's limit) refused the plan or an allocation
//               past it: deterministic, the same work under the same budget always fails.
//   Allocation: the machine or device could not provide the memory (std::bad_alloc, an allocator
//               or a CUDA library reporting failure): transient, another time or machine may succeed.
//   None:       not an OutOfMemory.
enum class OomReason { None, Budget, Allocation };

const char* oom_reason_name(OomReason reason);  // "budget", "allocation", "" for None

class Error : public std::runtime_error {
 public:
  // An OutOfMemory built here without a reason counts as Allocation (the retryable kind: a refusal
  // retried only costs a retry, a transient failure not retried loses the work); prefer the two
  // named constructors below.
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code), oom_reason_(code == ErrorCode::OutOfMemory ? OomReason::Allocation : OomReason::None) {}
  static Error budget_exceeded(const std::string& message) { return Error(ErrorCode::OutOfMemory, message, OomReason::Budget); }
  static Error allocation_failed(const std::string& message) { return Error(ErrorCode::OutOfMemory, message, OomReason::Allocation); }
  ErrorCode code() const { return code_; }
  OomReason oom_reason() const { return oom_reason_; }

 private:
  Error(ErrorCode code, const std::string& message, OomReason reason) : std::runtime_error(message), code_(code), oom_reason_(reason) {}
  ErrorCode code_;
  OomReason oom_reason_;
};

}  // namespace brainlatent
