// The addon kit: what every entry point of the addon shares, in one place.
// - Errors: one mapping from the core's failures to JS errors, whatever the entry point.
// - Arguments: typed accessors for positional arguments and option attributes (integers checked as
//   integers, arrays by type and length), and the enum tables of every string option.
// - Results: vectors handed to JS as typed arrays (large ones without a copy).
// - Cancellation: one cancel token (createCancelToken/cancel) that every async job accepts.
// - Jobs: one async job kit (run_job) that runs core work on the engine's own threads (never libuv's
//   pool, which fs, dns, zlib and crypto need), delivers its progress events through a thread-safe
//   function, maps its errors, holds its inputs alive, and settles its promise only after every
//   progress event has been delivered.
// Entry points copy their arguments into plain core structs on the JS thread; the worker never
// touches V8.
#pragma once
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "brainlatent/blas_turn.h"
#include "brainlatent/error.h"

namespace brainlatent::addon {

// ------------------------------------------------------------------ errors
// A JS error for a core failure: InvalidArgument → RangeError, anything else → Error; `.code`
// carries the core's code name either way (the TS layer maps codes onto its named classes).
// An OutOfMemory also carries `.reason`: "budget" (a memory budget refused: retrying cannot help)
// or "allocation" (the allocator failed: another time or machine may succeed).
Napi::Error to_js_error(Napi::Env env, ErrorCode code, const std::string& message, OomReason reason = OomReason::None);

struct Failure {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  OomReason reason = OomReason::None;
};
// The exception in flight (call inside a catch block): brainlatent::Error keeps its code and
// reason, std::bad_alloc is an OutOfMemory of reason Allocation, any other exception is Internal,
// prefixed with `what`.
Failure current_failure(const std::string& what);

// Runs a core call on the JS thread, rethrowing its failure as the mapped JS error. Its BLAS calls
// never wait for a turn (blas_turn.h): queued behind the jobs' calls, a predict() blocked the event
// loop for seconds.
template <typename Fn>
auto guarded(Napi::Env env, const std::string& what, Fn&& fn) -> decltype(fn()) {
  const linalg::BlasWithoutWaiting no_wait;
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    const Failure f = current_failure(what);
    throw to_js_error(env, f.code, f.message, f.reason);
  }
}

// ------------------------------------------------------------------ enum tables
template <typename E>
struct EnumEntry {
  const char* name;
  E value;
};

// The value named `text` in `table`; RangeError listing the names otherwise.
template <typename E, std::size_t N>
E parse_enum(Napi::Env env, const char* option, const std::string& text, const EnumEntry<E> (&table)[N]) {
  for (const auto& e : table)
    if (text == e.name) return e.value;
  std::string names;
  for (std::size_t i = 0; i < N; ++i) names += (i ? (i + 1 == N ? " or '" : ", '") : "'") + std::string(table[i].name) + "'";
  throw Napi::RangeError::New(env, std::string(option) + " must be " + names + ", got '" + text + "'");
}

// ------------------------------------------------------------------ arguments
// Option attributes of a JS object. Absent, undefined and null take the fallback.
bool has(const Napi::Object& o, const char* key);
double attr_number(const Napi::Object& o, const char* key, double fallback);
// A finite integer in [min, max] (TypeError if not a number, RangeError if out of range).
std::int64_t attr_int(const Napi::Object& o, const char* key, std::int64_t fallback, std::int64_t min = 0,
                      std::int64_t max = std::numeric_limits<std::int32_t>::max());
bool attr_bool(const Napi::Object& o, const char* key, bool fallback);
std::string attr_string(const Napi::Object& o, const char* key, const std::string& fallback);
template <typename E, std::size_t N>
E attr_enum(const Napi::Object& o, const char* key, E fallback, const EnumEntry<E> (&table)[N]) {
  if (!has(o, key)) return fallback;
  return parse_enum(o.Env(), key, attr_string(o, key, ""), table);
}

template <typename TA> struct typed_array_traits;
template <> struct typed_array_traits<Napi::Float32Array> { static constexpr napi_typedarray_type type = napi_float32_array; static constexpr const char* name = "Float32Array"; };
template <> struct typed_array_traits<Napi::Float64Array> { static constexpr napi_typedarray_type type = napi_float64_array; static constexpr const char* name = "Float64Array"; };
template <> struct typed_array_traits<Napi::Int32Array> { static constexpr napi_typedarray_type type = napi_int32_array; static constexpr const char* name = "Int32Array"; };
template <> struct typed_array_traits<Napi::Uint8Array> { static constexpr napi_typedarray_type type = napi_uint8_array; static constexpr const char* name = "Uint8Array"; };

constexpr std::size_t kAnyLength = std::numeric_limits<std::size_t>::max();

// `v` as a typed array of type TA with `expected` elements (kAnyLength: any).
template <typename TA>
TA as_array(const Napi::Value& v, const std::string& name, std::size_t expected = kAnyLength) {
  using Tr = typed_array_traits<TA>;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Tr::type)
    throw Napi::TypeError::New(v.Env(), name + " must be a " + Tr::name);
  TA a = v.As<TA>();
  if (expected != kAnyLength && a.ElementLength() != expected)
    throw Napi::RangeError::New(v.Env(), name + " has " + std::to_string(a.ElementLength()) + " elements, expected " +
                                             std::to_string(expected));
  return a;
}
template <typename TA>
TA attr_array(const Napi::Object& o, const char* key, std::size_t expected = kAnyLength) {
  return as_array<TA>(o.Get(key), std::string("'") + key + "'", expected);
}
template <typename TA, typename T>
std::vector<T> attr_vector(const Napi::Object& o, const char* key) {
  TA a = attr_array<TA>(o, key);
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

class CancelToken;
using CancelTokenPtr = std::shared_ptr<CancelToken>;

// Positional arguments of one entry point; errors name the function and the argument.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* function) : info_(info), fn_(function) {}
  Napi::Env env() const { return info_.Env(); }
  std::size_t length() const { return info_.Length(); }
  const Napi::Value operator[](std::size_t i) const { return info_[i]; }
  // A finite integer in [0, 2^53] (sizes, counts, indices).
  std::int64_t count(std::size_t i, const char* name) const;
  // A Float64Array of counts (non-negative integers up to 2^53), as int64s.
  std::vector<std::int64_t> counts(std::size_t i, const char* name) const;
  double number(std::size_t i, const char* name) const;
  std::string string(std::size_t i, const char* name) const;
  Napi::Object object(std::size_t i, const char* name) const;
  template <typename TA>
  TA array(std::size_t i, const char* name, std::size_t expected = kAnyLength) const {
    return as_array<TA>(info_[i], label(name), expected);
  }
  // Optional trailing arguments: empty when absent, undefined or null.
  Napi::Function callback(std::size_t i) const;
  CancelTokenPtr cancel_token(std::size_t i) const;

 private:
  std::string label(const char* name) const { return std::string(fn_) + ": " + name; }
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// ------------------------------------------------------------------ results
// Results up to this size are copied into memory V8 owns, which it frees when it collects them. An
// external buffer's finalizer (what frees the engine's memory) Node runs only when the event loop
// turns: a synchronous loop of calls keeps every result it dropped until it yields. A result whose size
// is known before the engine writes it is better allocated by the caller (in JS) and filled in place,
// as ridgePredict's is.
constexpr std::size_t kCopiedResultBytes = 1 << 20;

// Node hands memory of ours to JS only up to its Buffer limit (buffer.constants.MAX_LENGTH: 4 GiB on Node
// 20; napi_create_external_arraybuffer makes a Buffer): past it the call fails after Node has run the
// finalizer itself, and node-addon-api then frees the data again, a double free that ends the process (a
// RidgeCV fit of 32,800 × 32,800 coefficients did). Larger results are allocated by JS's ArrayBuffer
// constructor and filled: no limit but memory, and a RangeError, not V8's fatal out-of-memory, when it
// cannot be had. BRAINLATENT_MAX_EXTERNAL_BYTES=N sets the limit lower (the tests' way to that path).
// The binding sets Node's own limit at load (set_max_external_bytes: 2^53 − 1 from Node 22, whose results need no
// copy); until then, and under BRAINLATENT_MAX_EXTERNAL_BYTES, Node 20's.
inline const char* external_bytes_env() { return std::getenv("BRAINLATENT_MAX_EXTERNAL_BYTES"); }
inline std::atomic<std::size_t>& external_limit() {
  static std::atomic<std::size_t> limit{[] {
    const char* e = external_bytes_env();
    const long long v = e ? std::atoll(e) : 0;
    return v > 0 ? static_cast<std::size_t>(v) : std::size_t{1} << 32;
  }()};
  return limit;
}
inline std::size_t max_external_bytes() { return external_limit().load(); }
inline void set_max_external_bytes(std::size_t bytes) {
  if (!external_bytes_env() && bytes > 0) external_limit().store(bytes);
}
// Results copied past the limit, for the tests: that the path ran, not only that its values are right.
inline std::atomic<std::uint64_t>& large_result_copies() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}

// A zeroed ArrayBuffer of `bytes` from JS's constructor; failing, an OutOfMemory error of `oom_message`.
inline Napi::ArrayBuffer js_array_buffer(Napi::Env env, std::size_t bytes, const std::string& oom_message) {
  Napi::Function ctor = env.Global().Get("ArrayBuffer").As<Napi::Function>();
  try {
    return ctor.New({Napi::Number::New(env, static_cast<double>(bytes))}).As<Napi::ArrayBuffer>();
  } catch (const Napi::Error&) {
    throw to_js_error(env, ErrorCode::OutOfMemory, oom_message, OomReason::Allocation);
  }
}

// Hands a vector's storage to JS: a small one as a copy in V8's memory, a large one without copying
// (the ArrayBuffer frees it), one past Node's limit for that as a copy again (max_external_bytes).
template <typename TA, typename T, typename Alloc>
TA to_typed(Napi::Env env, std::vector<T, Alloc>&& v) {
  // An empty vector has no storage to hand over (an external buffer over null reads as detached).
  if (v.empty()) return TA::New(env, 0);
  if (v.size() * sizeof(T) <= kCopiedResultBytes) {
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, v.size() * sizeof(T));
    std::memcpy(buf.Data(), v.data(), v.size() * sizeof(T));
    return TA::New(env, v.size(), buf, 0);
  }
  if (v.size() * sizeof(T) > max_external_bytes()) {
    Napi::ArrayBuffer buf = js_array_buffer(env, v.size() * sizeof(T), "out of memory for a copy of a result of " + std::to_string(v.size()) + " values");
    std::memcpy(buf.Data(), v.data(), v.size() * sizeof(T));
    ++large_result_copies();
    const std::size_t n = v.size();
    std::vector<T, Alloc>().swap(v);  // (freed now, not when the caller's frame ends)
    return TA::New(env, n, buf, 0);
  }
  using Vec = std::vector<T, Alloc>;
  auto* holder = new Vec(std::move(v));
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(T),
                                                 [](Napi::Env, void*, Vec* h) { delete h; }, holder);
  return TA::New(env, holder->size(), buf, 0);
}

// A zeroed typed array of `n` elements for a result the engine fills (img2img's latents, noise). V8 ends the process
// when an ArrayBuffer it allocates itself cannot be had (v8::ArrayBuffer::New: "Fatal process out of memory"), so a
// large one is allocated here: failing, it is an OutOfMemory error (reason "allocation") naming `what` and its size,
// and one longer than a typed array holds is a RangeError. A small one (kCopiedResultBytes) is V8's own.
template <typename TA, typename T>
TA new_result(Napi::Env env, std::size_t n, const std::string& what) {
  if (n * sizeof(T) <= kCopiedResultBytes && n <= kCopiedResultBytes) return TA::New(env, n);
  const double gib = static_cast<double>(n) * sizeof(T) / (1024.0 * 1024.0 * 1024.0);
  const std::string size = std::to_string(n) + " values (" + std::to_string(gib).substr(0, std::to_string(gib).find('.') + 3) + " GiB)";
  if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw to_js_error(env, ErrorCode::OutOfMemory, what + ": out of memory for its " + size, OomReason::Allocation);
  // (past Node's limit for memory of ours: see max_external_bytes)
  if (n * sizeof(T) > max_external_bytes()) {
    Napi::ArrayBuffer buf = js_array_buffer(env, n * sizeof(T), what + ": out of memory for its " + size);
    ++large_result_copies();
    try {
      return TA::New(env, n, buf, 0);
    } catch (const Napi::Error&) {
      throw to_js_error(env, ErrorCode::InvalidArgument, what + ": " + size + " are more than a typed array holds");
    }
  }
  void* p = std::calloc(n, sizeof(T));
  if (!p) throw to_js_error(env, ErrorCode::OutOfMemory, what + ": out of memory for its " + size, OomReason::Allocation);
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, p, n * sizeof(T), [](Napi::Env, void* q) { std::free(q); });
  try {
    return TA::New(env, n, buf, 0);
  } catch (const Napi::Error&) {
    // (the buffer, and with it the memory, goes with the next collection)
    throw to_js_error(env, ErrorCode::InvalidArgument, what + ": " + size + " are more than a typed array holds");
  }
}

// ------------------------------------------------------------------ cancellation
// A cancel token: the flag core loops poll (between steps and large operations), plus hooks for
// work that must be told (ONNX Runtime's terminate flag). cancel() may be called from any thread.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const { return flag_.load(); }
  const std::atomic<bool>* flag() const { return &flag_; }
  // Runs `hook` on cancel (at once if already cancelled).
  void on_cancel(std::function<void()> hook);

 private:
  std::atomic<bool> flag_{false};
  std::mutex mutex_;
  std::vector<std::function<void()>> hooks_;
};

// ------------------------------------------------------------------ jobs
struct JobOptions;

// What the job's thread sees: the cancel flag and a way to post progress events.
class JobContext {
 public:
  // Null when the job has no cancel token.
  const std::atomic<bool>* cancel_flag() const { return cancel_ ? cancel_->flag() : nullptr; }
  bool cancelled() const { return cancel_ && cancel_->cancelled(); }
  bool reports_progress() const { return post_ != nullptr; }
  // Runs `hook` (from the cancelling thread) when the job is cancelled — at once if it is already — to interrupt a
  // call in flight (ONNX Runtime's terminate flag). A no-op without a cancel token.
  void on_cancel(std::function<void()> hook) const {
    if (cancel_) cancel_->on_cancel(std::move(hook));
  }
  // Queues one progress event: `args` runs on the JS thread and returns the callback's arguments.
  // A no-op without a progress callback. Never blocks the worker.
  void post(std::function<std::vector<napi_value>(Napi::Env)> args) const {
    if (post_) post_(std::move(args));
  }
  // progress(fraction, stage) events, as the ridge solvers report them.
  std::function<void(double, const std::string&)> fraction_progress() const;

 private:
  friend Napi::Promise run_job(Napi::Env, const char*, std::function<void(JobContext&)>, std::function<Napi::Value(Napi::Env)>, JobOptions);
  CancelTokenPtr cancel_;
  std::function<void(std::function<std::vector<napi_value>(Napi::Env)>)> post_;
};

struct JobOptions {
  Napi::Function on_progress;      // optional: receives the posted events
  CancelTokenPtr cancel;           // optional
  std::vector<Napi::Value> keep;   // JS objects (input arrays, handles) held until the job settles
};

using JobWork = std::function<void(JobContext&)>;
using JobDone = std::function<Napi::Value(Napi::Env)>;

// Queues `work` on one of the engine's job threads and returns the promise it settles: resolved with
// done(env) on the JS thread, or rejected with the mapped failure (named after `name`). Every
// progress event posted by `work` is delivered before the promise settles, never after. At most 4
// jobs compute at once (as many as libuv's default pool ran); the rest wait in the order run_job was
// called (the TS calls make it before their first await, README 'further calls wait in call order'). Not on
// libuv's pool: four long jobs there (four concurrent fits) left no thread to the process's fs, dns,
// zlib and crypto calls. An environment torn down (a worker thread ending) cancels all its jobs,
// withdraws those still queued, and then waits for the work of the others to stop. Cancelling the
// job's token (options.cancel) while it still waits in the queue withdraws it at once: its promise
// rejects (Cancelled, '… cancelled before it started') without waiting for a thread; a job computing
// stops at its next check.
Napi::Promise run_job(Napi::Env env, const char* name, JobWork work, JobDone done, JobOptions options = {});

// Jobs of this process from now on compute on a thread of their own at `niceness` steps below the
// process's CPU priority (0: on the engine's job thread itself, the default), while the job thread
// waits for it. A service sets it so that its event loop wins the cores from its own compute (a job
// thread's priority could not be raised back once lowered). Linux; a no-op elsewhere.
void set_job_niceness(int niceness);

// Ends every job of the process (cancels those computing, withdraws those queued: their promises
// reject with a Cancelled error, if the event loop turns again) and joins the job threads. The
// process must call it before exit() runs the libraries' exit handlers: OpenBLAS's joins its worker
// threads, and exit() hung for ever (or crashed) while a job thread still computed in them. The
// binding calls it from the main thread's process 'exit' event (the first step of process.exit(),
// of an uncaught exception's exit and of the loop's natural end); an atexit handler is the backstop.
// The kit stays closed afterwards: a job started later is refused (Cancelled, 'the process is exiting').
void stop_job_threads();

}  // namespace brainlatent::addon
