// The addon kit's non-template parts: error mapping, accessors, the cancel token, and the one
// async job kit with its threads (see kit.h).
#include "kit.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
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

#include "brainlatent/long_ops.h"

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

namespace {
// A finite integer in [0, 2^53]: a count (size, index) a double holds exactly.
bool is_count(double v) { return v >= 0 && v <= 9007199254740992.0 && v == std::floor(v); }
}  // namespace

std::int64_t Args::count(std::size_t i, const char* name) const {
  const double v = number(i, name);
  if (!is_count(v))
    throw Napi::RangeError::New(env(), label(name) + " must be a non-negative integer, got " + info_[i].ToString().Utf8Value());
  return static_cast<std::int64_t>(v);
}

std::vector<std::int64_t> Args::counts(std::size_t i, const char* name) const {
  const Napi::Float64Array a = array<Napi::Float64Array>(i, name);
  std::vector<std::int64_t> out(a.ElementLength());
  for (std::size_t j = 0; j < out.size(); ++j) {
    const double v = a[j];
    if (!is_count(v))
      throw Napi::RangeError::New(env(), label(name) + "[" + std::to_string(j) + "] must be a non-negative integer, got " + std::to_string(v));
    out[j] = static_cast<std::int64_t>(v);
  }
  return out;
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
  napi_env env;
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> keep;
  JobWork work;
  JobDone done;
  JobContext ctx;
  bool failed = false;
  Failure failure;
  Napi::ThreadSafeFunction tsfn;
  // The job's own token: the caller's cancels it, and so do a progress callback that throws (whose
  // exception then rejects the promise instead of escaping into Node), the environment's teardown
  // and the process's exit.
  CancelTokenPtr cancel = std::make_shared<CancelToken>();
  // The progress callback's exception, boxed (element 0 of an array: a thrown primitive cannot be referenced).
  Napi::Reference<Napi::Object> callback_error;
  bool stop_calling = false;  // the callback threw, or its environment can no longer run JS: no more events
  // Set once no engine thread touches the job again (its work ended and its thread-safe function
  // was released, or it was withdrawn before it started): the environment's teardown must wait for
  // it before Node frees the function, and the process's exit before the libraries' exit handlers run.
  std::mutex mutex;
  std::condition_variable work_ended;
  bool work_done = false;
  std::shared_ptr<JobState>* cleanup_hook = nullptr;  // registered with napi_add_env_cleanup_hook; null once run or removed
  explicit JobState(Napi::Env e) : env(e), deferred(Napi::Promise::Deferred::New(e)) {}

  void end_work() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      work_done = true;
    }
    work_ended.notify_all();
  }
  void wait_for_work() {
    std::unique_lock<std::mutex> lock(mutex);
    work_ended.wait(lock, [this] { return work_done; });
  }
};

void settle(Napi::Env env, JobState& s);

// Whether `env` can still run JS (false once a worker is ending: process.exit() in the worker, worker.terminate()).
// Setting an element goes through Node-API's preamble, which refuses when it cannot; it runs no JS itself.
bool js_runs(napi_env env) {
  napi_value box = nullptr, undef = nullptr;
  return napi_create_array(env, &box) == napi_ok && napi_get_undefined(env, &undef) == napi_ok &&
         napi_set_element(env, box, 0, undef) == napi_ok;
}

// Delivers one progress event to the caller's callback through raw Node-API calls, never node-addon-api's: when the
// call fails because the environment is ending (a worker's process.exit() inside the callback, or worker.terminate()
// while it runs), the pending "exception" is V8's termination, no object, and node-addon-api's wrapping of it aborted
// the whole process (FATAL ERROR: Error::Error napi_define_properties). A callback that threw stops the job, and its
// exception rejects the promise; an environment that can no longer run JS stops the job and gets no further events.
void deliver(napi_env env, napi_value cb, JobState& s, const Event& event) {
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    s.stop_calling = true;
    s.cancel->cancel();
    return;
  }
  napi_value exception = nullptr;
  bool failed = false;
  try {
    const std::vector<napi_value> args = event(Napi::Env(env));
    napi_value recv = nullptr, result = nullptr;
    napi_get_undefined(env, &recv);
    failed = napi_call_function(env, recv, cb, args.size(), args.data(), &result) != napi_ok;
  } catch (...) {
    failed = true;  // (building the arguments failed: the environment is ending, or what is pending says why)
  }
  if (failed) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &exception);
    s.stop_calling = true;
    s.cancel->cancel();
    // (the callback threw: keep its exception to reject with; boxing it fails when the environment is ending)
    napi_value box = nullptr;
    napi_ref ref = nullptr;
    if (exception != nullptr && napi_create_array(env, &box) == napi_ok && napi_set_element(env, box, 0, exception) == napi_ok &&
        napi_create_reference(env, box, 1, &ref) == napi_ok)
      s.callback_error = Napi::Reference<Napi::Object>(env, ref);
  }
  napi_close_handle_scope(env, scope);
}

std::atomic<int> g_job_niceness{0};

// Set on the threads that compute jobs (the engine's job threads and the lowered threads they wait for): exit() called
// on one of them (by a library) cannot wait for the jobs to end, its own among them.
thread_local bool t_computes_jobs = false;

// Runs `fn` on a new thread whose nice value is `niceness` above the process's, and waits for it;
// false (fn not run) when no thread could be started.
bool run_lowered(int niceness, const std::function<void()>& fn) {
  std::thread t;
  try {
    t = std::thread([&] {
      t_computes_jobs = true;
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

// The work of a job, on one of the engine's threads.
void compute(JobState& s) {
  const auto run = [&s] {
    try {
      // (the job's flag is this thread's for its run: a job waiting for a BLAS turn — a predictAsync behind four
      // fits' calls — leaves the queue at its abort, not once its turn comes; a fit's own scope nests inside)
      const std::string prefix = "brainlatent.";
      const CancelScope cancel_scope(s.cancel->flag(), s.name.rfind(prefix, 0) == 0 ? s.name.substr(prefix.size()) : s.name);
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

// A queued job that will not run: it settles as cancelled (on its JS thread, through its function's
// finalizer), and no engine thread touches it any more.
void withdraw(JobState& s, const char* why) {
  s.cancel->cancel();
  s.failed = true;
  s.failure = {ErrorCode::Cancelled, s.name + ": cancelled before it started (" + why + ")"};
  s.tsfn.Release();
  s.end_work();
}

// The engine's own threads, on which every job computes: at most kJobThreads jobs at once (as many as
// libuv's default pool ran), the rest waiting in call order. Not libuv's pool: a job holds its thread
// for seconds to minutes, and four of them (four concurrent fits) took all of libuv's threads, so that
// every fs call, dns.lookup, zlib and crypto job of the process waited behind them (an fs.readFile
// 9–13 s). Threads start as jobs need them and then wait for the next, until stop() joins them.
constexpr std::size_t kJobThreads = 4;

// Keeps this addon's code mapped for the rest of the process (RTLD_NODELETE), once a job thread runs
// in it: the threads wait in it between jobs, and Node unloads an addon that only a worker_thread
// loaded when that thread ends — a job thread then woke in unmapped code (a segfault). (It also keeps
// the exit handler below registered: glibc runs a library's atexit handlers when it is unloaded.)
void pin_addon() {
#if !defined(_WIN32)
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&pin_addon), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

class JobThreads {
 public:
  // (never destroyed: its threads may outlive the process's static destruction)
  static JobThreads& get() {
    static JobThreads* threads = new JobThreads();
    return *threads;
  }

  enum class Refusal { None, Exiting, NoThread };

  // Queues the job, starting a thread for it when none is idle and fewer than kJobThreads run; when
  // refused, nothing is queued.
  Refusal submit(const std::shared_ptr<JobState>& job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Refusal::Exiting;
    queue_.push_back(job);
    if (queue_.size() > idle_ && threads_.size() < kJobThreads) {
      if (threads_.empty()) guard_exit();
      try {
        threads_.emplace_back([this] { serve(); });
      } catch (const std::system_error&) {
        if (threads_.empty()) {
          queue_.pop_back();
          return Refusal::NoThread;
        }
      }
    }
    ready_.notify_one();
    return Refusal::None;
  }

  // Withdraws `job` if it still waits in the queue — its caller's token was cancelled — so that it rejects now rather
  // than once a thread frees (a prediction aborted while four fits ran had rejected only when one of them ended, half a
  // minute later). Under the queue's mutex, as serve() pops: either the job is withdrawn here and no thread ever takes
  // it, or a thread has it already and it stops at its next check (its token is cancelled). False then, and when a
  // teardown or stop() withdrew it first.
  bool withdraw_queued(const std::shared_ptr<JobState>& job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = std::find(queue_.begin(), queue_.end(), job);
      if (it == queue_.end()) return false;
      queue_.erase(it);
    }
    withdraw(*job, "its signal aborted while it waited for an engine thread");
    return true;
  }

  // Ends the jobs of `env` (of every environment when null): withdraws those still queued, cancels
  // those computing, and then waits until the work of each has ended — every one cancelled before the
  // first wait, so that the waits overlap. A job stops within its current large operation (well under
  // a second for the engine's loops); one that cannot be cancelled (a model load) runs to its end.
  void end_jobs(napi_env env, const char* why) {
    std::vector<std::shared_ptr<JobState>> queued, running;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (env == nullptr || (*it)->env == env) {
          queued.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& job : running_)
        if (env == nullptr || job->env == env) running.push_back(job);
    }
    for (const auto& job : running) job->cancel->cancel();
    for (const auto& job : queued) withdraw(*job, why);
    for (const auto& job : running) job->wait_for_work();
  }

  // Ends every job and joins the threads: what the process's exit must find done before exit() runs
  // the libraries' exit handlers — OpenBLAS's joins its worker threads, and with a job thread still
  // computing in them exit() hung for ever (or crashed). The kit stays closed afterwards: the process
  // is exiting, and a job started later (by another 'exit' listener) would compute while exit() runs
  // the handlers (a segfault); it is refused as Cancelled.
  void stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      // (exit() called on a thread computing a job, by a library: it cannot wait for its own job)
      if (t_computes_jobs) return;
      stopping_ = true;  // (no job is queued from now on; each thread returns once its job has ended)
      threads.swap(threads_);
    }
    ready_.notify_all();
    end_jobs(nullptr, "the process is exiting");
    for (auto& t : threads) t.join();
  }

 private:
  JobThreads() = default;

  void serve() {
    t_computes_jobs = true;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (stopping_) return;
      std::shared_ptr<JobState> job = std::move(queue_.front());
      queue_.pop_front();
      running_.push_back(job);
      lock.unlock();
      compute(*job);
      job->tsfn.Release();  // the finalizer settles, after the last progress event
      job->end_work();      // (after the release: a teardown waiting for it lets Node free the function only then)
      lock.lock();
      running_.erase(std::find(running_.begin(), running_.end(), job));
      // (if this is the last reference, the job has settled: what needed the JS thread is gone already)
      job.reset();
    }
  }

  // The backstop at exit(), registered once the first thread exists: the binding stops the threads
  // first (its process 'exit' listener and process.reallyExit hook), before exit() runs any handler.
  // This one runs only after the handlers registered after it (a library loaded later — ONNX
  // Runtime —, a static constructed later), so a job still computing when it runs may already be
  // computing on torn-down state: joining it could hang or crash, and letting exit() go on runs
  // OpenBLAS's handler, which joins its workers (a hang with a job inside them). So with a job
  // still computing it cancels them all and ends the process at once with exit()'s status (C stdio
  // flushed first; the handlers registered before it — the linked libraries', Node's terminal
  // reset — are skipped). With none computing it only withdraws the queued jobs and joins the idle
  // threads. Registered after the libraries the addon links, it runs before their exit handlers and
  // before _dl_fini, which runs OpenBLAS's.
  static void guard_exit() {
    static bool guarded = false;
    if (guarded) return;
    guarded = true;
    pin_addon();
#if defined(__GLIBC__)
    on_exit([](int status, void*) { JobThreads::get().stop_at_exit(status); }, nullptr);
#else
    std::atexit([] { JobThreads::get().stop_at_exit(-1); });
#endif
  }

  // exit()'s backstop (above); `status` is exit()'s, or -1 where unknown (then it stops as stop() does).
  void stop_at_exit(int status) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || t_computes_jobs) return;
      if (!running_.empty() && status >= 0) {
        for (const auto& job : running_) job->cancel->cancel();
        std::fflush(nullptr);
        std::_Exit(status);
      }
    }
    stop();
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<JobState>> queue_;
  std::vector<std::shared_ptr<JobState>> running_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

// Runs at the environment's teardown (a worker_thread ending) while the job is unsettled: ends every
// job of the environment (all cancelled, the queued ones withdrawn, before any is waited for) and
// waits for this one's, so that no engine thread touches its thread-safe function when Node frees it.
void end_with_env(void* arg) {
  std::unique_ptr<std::shared_ptr<JobState>> holder(static_cast<std::shared_ptr<JobState>*>(arg));
  JobState& s = **holder;
  s.cleanup_hook = nullptr;
  JobThreads::get().end_jobs(s.env, "its environment is ending");
  s.wait_for_work();
}

void settle(Napi::Env env, JobState& s) {
  if (s.cleanup_hook) {
    napi_remove_env_cleanup_hook(env, end_with_env, s.cleanup_hook);
    delete s.cleanup_hook;
    s.cleanup_hook = nullptr;
  }
  // (an environment that can no longer run JS has no promise to settle: node-addon-api's errors must not be reached
  // there, whose wrapping of a pending termination aborts the process)
  if (js_runs(env)) {
   try {
    Napi::HandleScope scope(env);
    if (!s.callback_error.IsEmpty()) {
      // (wrapped, so that ts/native/call.ts rethrows the caller's own value untouched instead of mapping it as the
      // engine's error: a RangeError the callback threw is not an InvalidArgument of the engine)
      Napi::Object wrapped = Napi::Object::New(env);
      wrapped.Set("brainlatentCallbackError", s.callback_error.Value().Get(0u));
      s.deferred.Reject(wrapped);
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
  }
  // (what the work and the result captured ends here, on the JS thread, as the inputs' references must)
  s.work = nullptr;
  s.done = nullptr;
  s.keep.clear();
}

}  // namespace

void set_job_niceness(int niceness) { g_job_niceness.store(std::max(0, std::min(39, niceness))); }

void stop_job_threads() { JobThreads::get().stop(); }

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
  // The caller's token cancels the job's own and, while the job waits in the queue, withdraws it. (A token may be shared
  // by several jobs — one AbortSignal across calls —: each job registers its own hook. Weak: a token that outlives its
  // jobs keeps none of them, nor the JS references they hold.)
  if (options.cancel) {
    std::weak_ptr<CancelToken> own = s->cancel;
    std::weak_ptr<JobState> job = state;
    options.cancel->on_cancel([own, job] {
      if (auto t = own.lock()) t->cancel();
      if (auto j = job.lock()) JobThreads::get().withdraw_queued(j);
    });
  }
  if (!options.on_progress.IsEmpty()) {
    s->ctx.post_ = [s](Event ev) {
      auto* msg = new Event(std::move(ev));
      const napi_status st = s->tsfn.NonBlockingCall(msg, [s](Napi::Env e, Napi::Function cb, Event* m) {
        std::unique_ptr<Event> own(m);
        if (e == nullptr || cb.IsEmpty() || s->stop_calling) return;
        deliver(e, cb, *s, *m);
      });
      if (st != napi_ok) delete msg;
    };
  }
  // (added after the function's own cleanup hook, so that Node runs it first: hooks run in reverse order)
  s->cleanup_hook = new std::shared_ptr<JobState>(state);
  if (napi_add_env_cleanup_hook(env, end_with_env, s->cleanup_hook) != napi_ok) {
    delete s->cleanup_hook;
    s->cleanup_hook = nullptr;
  }
  Napi::Promise promise = s->deferred.Promise();
  const JobThreads::Refusal refused = JobThreads::get().submit(state);
  // (a token cancelled already ran its hook above before the job was queued: withdraw it now, unless a thread took it)
  if (refused == JobThreads::Refusal::None && options.cancel && options.cancel->cancelled()) JobThreads::get().withdraw_queued(state);
  if (refused != JobThreads::Refusal::None) {
    s->failed = true;
    s->failure = refused == JobThreads::Refusal::Exiting
                     ? Failure{ErrorCode::Cancelled, std::string(name) + ": not started, the process is exiting"}
                     : Failure{ErrorCode::Internal, std::string(name) + ": no thread could be started for the job"};
    s->end_work();
    s->tsfn.Release();
  }
  return promise;
}

}  // namespace brainlatent::addon
