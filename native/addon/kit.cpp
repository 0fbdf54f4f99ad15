// The addon kit's non-template parts: error mapping, accessors, the cancel token, and the one
// async job kit with its threads (see kit.h).
#include "kit.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

#if !defined(_WIN32)
#include <dlfcn.h>
#endif
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

// Everything a job needs from its start to its settling: the promise, the held inputs, the work and
// its context, the outcome. The thread-safe function carries the progress events and, through its
// finalizer (which Node runs after the last queued event), settles the promise on the JS thread.
struct JobState {
  std::string name;
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep;
  JobWork work;
  JobDone done;
  JobContext ctx;
  bool failed = false;
  Failure failure;
  Napi::ThreadSafeFunction tsfn;
  // The job's own token: the caller's cancels it, and so does a progress callback that throws (whose
  // exception then rejects the promise instead of escaping into Node), and the environment's teardown.
  CancelTokenPtr cancel = std::make_shared<CancelToken>();
  Napi::Reference<Napi::Value> callback_error;
  // The environment's teardown waits for the work (wait_for_work): its thread must be done with the
  // thread-safe function before Node frees it.
  std::mutex mutex;
  std::condition_variable work_ended;
  bool work_done = false;
  std::shared_ptr<JobState>* cleanup_hook = nullptr;  // registered with napi_add_env_cleanup_hook; null once run or removed
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// Runs at the environment's teardown (a worker_thread ending, the process exiting) while the job is
// unsettled: stops its work and waits for its thread to be done with it.
void wait_for_work(void* arg) {
  std::unique_ptr<std::shared_ptr<JobState>> holder(static_cast<std::shared_ptr<JobState>*>(arg));
  JobState& s = **holder;
  s.cleanup_hook = nullptr;
  s.cancel->cancel();
  std::unique_lock<std::mutex> lock(s.mutex);
  s.work_ended.wait(lock, [&] { return s.work_done; });
}

void settle(Napi::Env env, JobState& s) {
  if (s.cleanup_hook) {
    napi_remove_env_cleanup_hook(env, wait_for_work, s.cleanup_hook);
    delete s.cleanup_hook;
    s.cleanup_hook = nullptr;
  }
  try {
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
  } catch (...) {
    // (the environment is being torn down: no promise to settle any more)
  }
  // (what the work and the result captured ends here, on the JS thread, as the inputs' references must)
  s.work = nullptr;
  s.done = nullptr;
  s.keep.clear();
}

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

// The engine's own threads, on which every job computes: at most kJobThreads jobs at once (as many as
// libuv's default pool ran), the rest waiting in call order. Not libuv's pool: a job holds its thread
// for seconds to minutes, and four of them (four concurrent fits) took all of libuv's threads, so that
// every fs call, dns.lookup, zlib and crypto job of the process waited behind them (an fs.readFile
// 9–13 s). Threads start as jobs need them and then wait for the next.
constexpr std::size_t kJobThreads = 4;

// Keeps this addon's code mapped for the rest of the process (RTLD_NODELETE), once a job thread runs
// in it: the threads wait in it between jobs, and Node unloads an addon that only a worker_thread
// loaded when that thread ends — a job thread then woke in unmapped code (a segfault).
void pin_addon() {
#if !defined(_WIN32)
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&pin_addon), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

class JobThreads {
 public:
  // (never destroyed: its threads wait on it through the process's static destruction)
  static JobThreads& get() {
    static JobThreads* threads = new JobThreads();
    return *threads;
  }

  // Queues `task`; false when no thread runs or could be started for it (then it is not queued).
  bool submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    if (queue_.size() > idle_ && threads_ < kJobThreads) {
      if (threads_ == 0) pin_addon();
      try {
        std::thread([this] { serve(); }).detach();
        ++threads_;
      } catch (const std::system_error&) {
        if (threads_ == 0) {
          queue_.pop_back();
          return false;
        }
      }
    }
    ready_.notify_one();
    return true;
  }

 private:
  void serve() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return !queue_.empty(); });
      --idle_;
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      task = nullptr;
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::size_t threads_ = 0, idle_ = 0;
};

// The work of a job, on one of the engine's threads.
void compute(JobState& s) {
  const auto run = [&s] {
    try {
      s.work(s.ctx);
    } catch (...) {
      s.failed = true;
      s.failure = current_failure(s.name);
    }
  };
  const int niceness = g_job_niceness.load();
  // (no thread to be had: the work runs here, at the engine thread's priority)
  if (!(niceness > 0 && run_lowered(niceness, run))) run();
}

}  // namespace

void set_job_niceness(int niceness) { g_job_niceness.store(std::max(0, std::min(39, niceness))); }

Napi::Promise run_job(Napi::Env env, const char* name, JobWork work, JobDone done, JobOptions options) {
  auto state = std::make_shared<JobState>(env);
  JobState* s = state.get();
  s->name = name;
  s->work = std::move(work);
  s->done = std::move(done);
  for (const Napi::Value& v : options.keep)
    if (!v.IsEmpty() && !v.IsUndefined() && !v.IsNull()) s->keep.push_back(Napi::Persistent(v));
  // (with no progress callback the function is empty: only its finalizer, which settles, is used)
  auto* holder = new std::shared_ptr<JobState>(state);
  s->tsfn = Napi::ThreadSafeFunction::New(env, options.on_progress, std::string(name), 0, 1,
                                          [](Napi::Env e, std::shared_ptr<JobState>* h) {
                                            std::unique_ptr<std::shared_ptr<JobState>> own(h);
                                            settle(e, **h);
                                          },
                                          holder);
  s->ctx.cancel_ = s->cancel;
  if (options.cancel) {
    std::weak_ptr<CancelToken> own = s->cancel;
    options.cancel->on_cancel([own] {
      if (auto t = own.lock()) t->cancel();
    });
  }
  if (!options.on_progress.IsEmpty()) {
    s->ctx.post_ = [s](Event ev) {
      auto* msg = new Event(std::move(ev));
      const napi_status st = s->tsfn.NonBlockingCall(msg, [s](Napi::Env e, Napi::Function cb, Event* m) {
        std::unique_ptr<Event> own(m);
        if (e == nullptr || cb.IsEmpty() || !s->callback_error.IsEmpty()) return;
        Napi::HandleScope scope(e);
        try {
          const std::vector<napi_value> args = (*m)(e);
          cb.Call(args);
        } catch (const Napi::Error& err) {
          // The caller's callback threw: stop the job and reject with its exception.
          s->callback_error = Napi::Reference<Napi::Value>::New(err.Value(), 1);
          s->cancel->cancel();
        }
      });
      if (st != napi_ok) delete msg;
    };
  }
  s->cleanup_hook = new std::shared_ptr<JobState>(state);
  if (napi_add_env_cleanup_hook(env, wait_for_work, s->cleanup_hook) != napi_ok) {
    delete s->cleanup_hook;
    s->cleanup_hook = nullptr;
  }
  Napi::Promise promise = s->deferred.Promise();
  const bool queued = JobThreads::get().submit([state]() mutable {
    compute(*state);
    state->tsfn.Release();  // the finalizer settles, after the last progress event
    // (after the release: a teardown waiting in wait_for_work lets Node free the function only then)
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->work_done = true;
    }
    state->work_ended.notify_all();
    // (if this is the last reference, settle has run: what needed the JS thread is gone already)
    state.reset();
  });
  if (!queued) {
    s->failed = true;
    s->failure = {ErrorCode::Internal, std::string(name) + ": no thread could be started for the job"};
    s->work = nullptr;
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      s->work_done = true;
    }
    s->tsfn.Release();
  }
  return promise;
}

}  // namespace brainlatent::addon
