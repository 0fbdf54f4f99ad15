// The addon kit's non-template parts: error mapping, accessors, the cancel token, and the one
// async job class (see kit.h).
#include "kit.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <new>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace brainlatent::addon {

// ------------------------------------------------------------------ errors
Napi::Error to_js_error(Napi::Env env, ErrorCode code, const std::string& message, OomReason reason) {
  Napi::Error err = code == ErrorCode::InvalidArgument ? static_cast<Napi::Error>(Napi::RangeError::New(env, message))
                                                       : Napi::Error::New(env, message);
  err.Value().Set("code", Napi::String::New(env, error_code_name(code)));
  if (code == ErrorCode::OutOfMemory) {
    // (an OutOfMemory that somehow arrives without a reason is the retryable kind, as in Error's constructor)
    err.Value().Set("reason", Napi::String::New(env, oom_reason_name(reason == OomReason::None ? OomReason::Allocation : reason)));
  }
  return err;
}

Failure current_failure(const std::string& what) {
  try {
    throw;
  } catch (const Error& e) {
    return {e.code(), e.what(), e.oom_reason()};
  } catch (const std::bad_alloc&) {
    return {ErrorCode::OutOfMemory, what + ": out of memory", OomReason::Allocation};
  } catch (const std::exception& e) {
    return {ErrorCode::Internal, what + " failed: " + e.what()};
  } catch (...) {
    return {ErrorCode::Internal, what + " failed (unknown exception)"};
  }
}

// ------------------------------------------------------------------ attributes
bool has(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  const Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

double attr_number(const Napi::Object& o, const char* key, double fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::int64_t attr_int(const Napi::Object& o, const char* key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  if (!has(o, key)) return fallback;
  const double v = attr_number(o, key, 0);
  if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(min) || v > static_cast<double>(max))
    throw Napi::RangeError::New(o.Env(), std::string("option '") + key + "' must be an integer in [" + std::to_string(min) + ", " +
                                             std::to_string(max) + "], got " + Napi::Number::New(o.Env(), v).ToString().Utf8Value());
  return static_cast<std::int64_t>(v);
}

bool attr_bool(const Napi::Object& o, const char* key, bool fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string attr_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// ------------------------------------------------------------------ positional arguments
double Args::number(std::size_t i, const char* name) const {
  if (!info_[i].IsNumber()) throw Napi::TypeError::New(env(), label(name) + " must be a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

std::int64_t Args::count(std::size_t i, const char* name) const {
  const double v = number(i, name);
  if (!(v >= 0) || v > 9007199254740992.0 || v != std::floor(v))
    throw Napi::RangeError::New(env(), label(name) + " must be a non-negative integer, got " + info_[i].ToString().Utf8Value());
  return static_cast<std::int64_t>(v);
}

std::string Args::string(std::size_t i, const char* name) const {
  if (!info_[i].IsString()) throw Napi::TypeError::New(env(), label(name) + " must be a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

Napi::Object Args::object(std::size_t i, const char* name) const {
  if (!info_[i].IsObject()) throw Napi::TypeError::New(env(), label(name) + " must be an object");
  return info_[i].As<Napi::Object>();
}

Napi::Function Args::callback(std::size_t i) const {
  if (i >= info_.Length() || info_[i].IsUndefined() || info_[i].IsNull()) return Napi::Function();
  if (!info_[i].IsFunction()) throw Napi::TypeError::New(env(), label("progress callback") + " must be a function");
  return info_[i].As<Napi::Function>();
}

CancelTokenPtr Args::cancel_token(std::size_t i) const {
  if (i >= info_.Length() || info_[i].IsUndefined() || info_[i].IsNull()) return nullptr;
  if (!info_[i].IsExternal()) throw Napi::TypeError::New(env(), label("cancel token") + " must come from createCancelToken()");
  return *info_[i].As<Napi::External<CancelTokenPtr>>().Data();
}

// ------------------------------------------------------------------ cancel token
void CancelToken::cancel() {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (flag_.exchange(true)) return;
    hooks.swap(hooks_);
  }
  for (auto& h : hooks) h();
}

void CancelToken::on_cancel(std::function<void()> hook) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!flag_.load()) {
      hooks_.push_back(std::move(hook));
      return;
    }
  }
  hook();
}

// ------------------------------------------------------------------ jobs
std::function<void(double, const std::string&)> JobContext::fraction_progress() const {
  if (!post_) return nullptr;
  auto post = post_;
  return [post](double fraction, const std::string& stage) {
    post([fraction, stage](Napi::Env env) -> std::vector<napi_value> {
      return {Napi::Number::New(env, fraction), Napi::String::New(env, stage)};
    });
  };
}

namespace {

using Event = std::function<std::vector<napi_value>(Napi::Env)>;

// Everything a job needs after its worker object is gone: the promise, the held inputs, the
// outcome. With progress, the thread-safe function's finalizer (which runs after its last queued
// event) settles the promise; without, OnOK does.
struct JobState {
  std::string name;
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep;
  JobDone done;
  bool failed = false;
  Failure failure;
  Napi::ThreadSafeFunction tsfn;
  bool has_tsfn = false;
  // The job's own token: the caller's cancels it, and so does a progress callback that throws (whose
  // exception then rejects the promise instead of escaping into Node).
  CancelTokenPtr cancel = std::make_shared<CancelToken>();
  Napi::Reference<Napi::Value> callback_error;
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void settle(Napi::Env env, JobState& s) {
  Napi::HandleScope scope(env);
  if (!s.callback_error.IsEmpty()) {
    s.deferred.Reject(s.callback_error.Value());
    s.callback_error.Reset();
  } else if (s.failed) {
    s.deferred.Reject(to_js_error(env, s.failure.code, s.failure.message, s.failure.reason).Value());
  } else {
    try {
      s.deferred.Resolve(s.done(env));
    } catch (const Napi::Error& e) {
      s.deferred.Reject(e.Value());
    } catch (...) {
      const Failure f = current_failure(s.name);
      s.deferred.Reject(to_js_error(env, f.code, f.message, f.reason).Value());
    }
  }
  s.done = nullptr;
  s.keep.clear();
}

}  // namespace

namespace {
std::atomic<int> g_job_niceness{0};

// Runs `fn` on a new thread whose nice value is `niceness` above the process's, and waits for it;
// false (fn not run) when no thread could be started.
bool run_lowered(int niceness, const std::function<void()>& fn) {
  std::thread t;
  try {
    t = std::thread([&] {
#if defined(__linux__)
      const auto tid = static_cast<id_t>(syscall(SYS_gettid));
      errno = 0;
      const int base = getpriority(PRIO_PROCESS, 0);
      if (errno == 0) setpriority(PRIO_PROCESS, tid, std::min(19, base + niceness));  // (not permitted: stays)
#endif
      fn();
    });
  } catch (const std::system_error&) {
    return false;
  }
  t.join();
  return true;
}
}  // namespace

void set_job_niceness(int niceness) { g_job_niceness.store(std::max(0, std::min(39, niceness))); }

class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, std::shared_ptr<JobState> state, JobWork work, const CancelTokenPtr& caller_token)
      : Napi::AsyncWorker(env, state->name.c_str()), state_(std::move(state)), work_(std::move(work)) {
    ctx_.cancel_ = state_->cancel;
    if (caller_token) {
      std::weak_ptr<CancelToken> own = state_->cancel;
      caller_token->on_cancel([own] {
        if (auto t = own.lock()) t->cancel();
      });
    }
    if (state_->has_tsfn) {
      JobState* s = state_.get();
      ctx_.post_ = [s](Event ev) {
        auto* msg = new Event(std::move(ev));
        const napi_status st = s->tsfn.NonBlockingCall(msg, [s](Napi::Env env, Napi::Function cb, Event* m) {
          std::unique_ptr<Event> own(m);
          if (env == nullptr || cb.IsEmpty() || !s->callback_error.IsEmpty()) return;
          Napi::HandleScope scope(env);
          try {
            const std::vector<napi_value> args = (*m)(env);
            cb.Call(args);
          } catch (const Napi::Error& e) {
            // The caller's callback threw: stop the job and reject with its exception.
            s->callback_error = Napi::Reference<Napi::Value>::New(e.Value(), 1);
            s->cancel->cancel();
          }
        });
        if (st != napi_ok) delete msg;
      };
    }
  }

  void Execute() override {
    const auto run = [this] {
      try {
        work_(ctx_);
      } catch (...) {
        state_->failed = true;
        state_->failure = current_failure(state_->name);
      }
    };
    const int niceness = g_job_niceness.load();
    // (no thread to be had: the work runs here, at the worker's priority)
    if (niceness > 0 && run_lowered(niceness, run)) return;
    run();
  }

  void OnOK() override { finish(); }
  void OnError(const Napi::Error&) override { finish(); }

 private:
  void finish() {
    if (state_->has_tsfn) state_->tsfn.Release();  // the finalizer settles, after the last event
    else settle(Env(), *state_);
  }
  std::shared_ptr<JobState> state_;
  JobWork work_;
  JobContext ctx_;
};

Napi::Promise run_job(Napi::Env env, const char* name, JobWork work, JobDone done, JobOptions options) {
  auto state = std::make_shared<JobState>(env);
  state->name = name;
  state->done = std::move(done);
  for (const Napi::Value& v : options.keep)
    if (!v.IsEmpty() && !v.IsUndefined() && !v.IsNull()) state->keep.push_back(Napi::Persistent(v));
  if (!options.on_progress.IsEmpty()) {
    auto* holder = new std::shared_ptr<JobState>(state);
    state->tsfn = Napi::ThreadSafeFunction::New(env, options.on_progress, std::string(name) + ".progress", 0, 1,
                                                [](Napi::Env e, std::shared_ptr<JobState>* h) {
                                                  std::unique_ptr<std::shared_ptr<JobState>> own(h);
                                                  settle(e, **h);
                                                },
                                                holder);
    state->has_tsfn = true;
  }
  Napi::Promise promise = state->deferred.Promise();
  auto* worker = new JobWorker(env, state, std::move(work), options.cancel);
  worker->Queue();
  return promise;
}

}  // namespace brainlatent::addon
