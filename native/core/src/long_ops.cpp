#include "brainlatent/long_ops.h"

#include "brainlatent/error.h"

namespace brainlatent {

namespace {
thread_local const CancelScope* t_cancel = nullptr;
thread_local const StepProgress* t_progress = nullptr;
}  // namespace

CancelScope::CancelScope(const std::atomic<bool>* flag, std::string what) : flag_(flag), what_(std::move(what)), outer_(t_cancel) {
  t_cancel = this;
}

CancelScope::~CancelScope() { t_cancel = outer_; }

CancelSource current_cancel() {
  const CancelScope* s = t_cancel;
  return s ? CancelSource{s->flag_, s->what_} : CancelSource{};
}

void poll_cancel() {
  const CancelScope* s = t_cancel;
  if (s && s->flag_ && s->flag_->load(std::memory_order_relaxed)) throw Error(ErrorCode::Cancelled, s->what_ + " cancelled");
}

StepProgress::StepProgress(std::function<void(double)> report) : report_(std::move(report)), outer_(t_progress) { t_progress = this; }

StepProgress::~StepProgress() { t_progress = outer_; }

void step_done(double fraction) {
  poll_cancel();
  const StepProgress* s = t_progress;
  if (s && s->report_) s->report_(fraction < 0 ? 0 : fraction > 1 ? 1 : fraction);
}

}  // namespace brainlatent
