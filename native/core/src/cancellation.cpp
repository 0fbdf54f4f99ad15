#include "brainlatent/cancellation.h"

#include "brainlatent/error.h"

namespace brainlatent {

namespace {
thread_local const CancelScope* t_scope = nullptr;
}

CancelScope::CancelScope(const std::atomic<bool>* flag, std::string what) : flag_(flag), what_(std::move(what)), outer_(t_scope) {
  t_scope = this;
}

CancelScope::~CancelScope() { t_scope = outer_; }

void poll_cancel() {
  const CancelScope* s = t_scope;
  if (s && s->flag_ && s->flag_->load(std::memory_order_relaxed)) throw Error(ErrorCode::Cancelled, s->what_ + " cancelled");
}

}  // namespace brainlatent
