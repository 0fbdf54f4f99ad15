#include "brainlatent/error.h"

namespace brainlatent {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::ShapeMismatch: return "ShapeMismatch";
    case ErrorCode::NonFinite: return "NonFinite";
    case ErrorCode::OutOfMemory: return "OutOfMemory";
    case ErrorCode::BackendUnavailable: return "BackendUnavailable";
    case ErrorCode::NumericalFailure: return "NumericalFailure";
    case ErrorCode::OrtFailure: return "OrtFailure";
    case ErrorCode::InvalidModel: return "InvalidModel";
    case ErrorCode::Cancelled: return "Cancelled";
    case ErrorCode::Internal: return "Internal";
  }
  return "Unknown";
}

const char* oom_reason_name(OomReason reason) {
  switch (reason) {
    case OomReason::Budget: return "budget";
    case OomReason::Allocation: return "allocation";
    case OomReason::None: return "";
  }
  return "";
}

}  // namespace brainlatent
