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

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace brainlatent
