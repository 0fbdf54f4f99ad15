// Forwards a job's cancellation to the one call in flight that can be interrupted — ONNX Runtime's
// terminate flag for the U-Net run under way — rather than letting the job notice only at its next
// check (a whole U-Net call later: seconds with a large model). The canceller calls fire() from any
// thread; the running code attaches a target for as long as that target exists.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace brainlatent {

class CancelRelay {
 public:
  // Calls the attached target (now and for every target attached later). Thread-safe.
  void fire() {
    std::lock_guard<std::mutex> lock(mutex_);
    fired_ = true;
    // (under the lock: detach() waits for it, so the target cannot be destroyed while it runs)
    if (target_) target_();
  }

  // The target attached until the returned guard goes (called at once if fire() came first).
  class Attached {
   public:
    explicit Attached(CancelRelay* relay = nullptr) : relay_(relay) {}
    Attached(Attached&& o) noexcept : relay_(std::exchange(o.relay_, nullptr)) {}
    Attached& operator=(Attached&&) = delete;
    ~Attached() {
      if (relay_) relay_->detach();
    }

   private:
    CancelRelay* relay_;
  };
  [[nodiscard]] Attached attach(std::function<void()> target) {
    std::lock_guard<std::mutex> lock(mutex_);
    target_ = std::move(target);
    if (fired_ && target_) target_();
    return Attached(this);
  }

 private:
  void detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    target_ = nullptr;
  }
  std::mutex mutex_;
  std::function<void()> target_;
  bool fired_ = false;
};

using CancelRelayPtr = std::shared_ptr<CancelRelay>;

}  // namespace brainlatent
