// Process-wide functions of the engine: threads, what was built (backends and why not the rest),
// the cancel tokens every async job accepts, and replacing the process (the service's V8 flags).
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

#include "addon_modules.h"
#include "brainlatent/backend.h"
#include "brainlatent/blas_core.h"
#include "brainlatent/file_io.h"
#include "brainlatent/file_map.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/linalg.h"
#include "brainlatent/ort_runtime.h"
#include "brainlatent/parallel.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

// createCancelToken() -> token (an External); pass it to any async job, then cancel(token).
Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) {
  return Napi::External<CancelTokenPtr>::New(info.Env(), new CancelTokenPtr(std::make_shared<CancelToken>()),
                                             [](Napi::Env, CancelTokenPtr* t) { delete t; });
}

// cancel(token): the jobs holding it stop at their next check (a sampler step, a solver's large operation).
Napi::Value Cancel(const Napi::CallbackInfo& info) {
  const CancelTokenPtr token = Args(info, "cancel").cancel_token(0);
  if (!token) throw Napi::TypeError::New(info.Env(), "cancel: expected a cancel token");
  token->cancel();
  return info.Env().Undefined();
}

// setThreads(n) -> threads in use (0 = all cores): BLAS and the engine's own loops.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const std::int64_t n = Args(info, "setThreads").count(0, "threads");
  set_engine_threads(static_cast<int>(std::min<std::int64_t>(n, 4096)));
  return Napi::Number::New(info.Env(), engine_threads());
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), engine_threads()); }

// buildInfo() -> {blas, blasCore, threads, backends, backendList, cuda, cudaReason, hugePages, testHooks}
Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", linalg::blas_vendor());
  // OpenBLAS's CPU kernels: {name, source: 'OpenBLAS' | 'OPENBLAS_CORETYPE' | 'engine', note} (blas_core.h)
  const linalg::BlasCore& core = linalg::blas_core();
  Napi::Object c = Napi::Object::New(env);
  c.Set("name", core.name);
  c.Set("source", core.source);
  c.Set("note", core.note);
  o.Set("blasCore", c);
  o.Set("threads", engine_threads());
  // What was compiled and why not the rest: the registry's list (native/core/src/backend_registry.cpp).
  Napi::Array backends = Napi::Array::New(env), list = Napi::Array::New(env);
  std::string cuda_reason;
  bool cuda = false;
  for (const BackendInfo& b : list_backends()) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", b.name);
    e.Set("compiled", b.compiled);
    e.Set("available", b.available);
    e.Set("detail", b.detail);
    list.Set(list.Length(), e);
    if (b.available) backends.Set(backends.Length(), Napi::String::New(env, b.name));
    if (b.name == "cuda") {
      cuda = b.available;
      cuda_reason = b.detail;
    }
  }
  o.Set("backends", backends);
  o.Set("backendList", list);
  o.Set("cuda", Napi::Boolean::New(env, cuda));
  o.Set("cudaReason", Napi::String::New(env, cuda_reason));
  o.Set("hugePages", Napi::Boolean::New(env, huge_pages_in_use()));
  o.Set("testHooks", Napi::Boolean::New(env, ort_test_hooks_compiled() || linalg::blas_core_test_hooks_compiled()));
  return o;
}

// allocLargeBuffer(bytes, zeroFill = true) -> ArrayBuffer in huge pages (host_memory.h): where the
// .npy readers put large arrays, so that filling them does not pay a page fault per 4 KiB. A reader
// that overwrites every byte passes zeroFill false: the pages are then first touched by the read
// itself, on the thread pool, instead of by a memset on the JS thread. V8 counts an ArrayBuffer's
// bytes as external memory itself (as for the results of to_typed): no AdjustExternalMemory, which
// counted them twice and cost an extra scavenge and mark-compact per read.
Napi::Value AllocLargeBuffer(const Napi::CallbackInfo& info) {
  Args args(info, "allocLargeBuffer");
  const std::int64_t n = args.count(0, "bytes");
  const bool zero_fill = !(args.length() > 1 && args[1].IsBoolean() && !args[1].As<Napi::Boolean>().Value());
  if (n == 0) return Napi::ArrayBuffer::New(info.Env(), 0);
  void* p = alloc_pages(static_cast<std::size_t>(n));
  if (!p) throw Napi::RangeError::New(info.Env(), "allocLargeBuffer: out of memory for " + std::to_string(n) + " bytes");
  if (zero_fill) std::memset(p, 0, static_cast<std::size_t>(n));
  return Napi::ArrayBuffer::New(info.Env(), p, static_cast<std::size_t>(n), [](Napi::Env, void* q) { free_pages(q); });
}

// mapFile(fd, offset, bytes) -> ArrayBuffer over that range of the open file, mapped copy-on-write
// (file_map.h): the .npy readers' large arrays without a copy, from the file they opened. Throws an
// Error saying what failed (the reader then reads the file instead); the mapping goes with the
// ArrayBuffer and outlives the descriptor.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Args args(info, "mapFile");
  explain_sigbus_on_mapped_inputs();  // (a mapped input that shrinks says so instead of "Bus error")
  const std::int64_t fd = args.count(0, "fd"), offset = args.count(1, "offset"), bytes = args.count(2, "bytes");
  MappedRange m = map_file_range(static_cast<int>(fd), static_cast<std::uint64_t>(offset), static_cast<std::size_t>(bytes));
  if (!m.data) throw Napi::Error::New(info.Env(), "mapFile: " + m.message);
  auto* hint = new MappedRange(std::move(m));
  return Napi::ArrayBuffer::New(
      info.Env(), hint->data, static_cast<std::size_t>(bytes),
      [](Napi::Env, void*, MappedRange* h) {
        unmap_range(*h);
        delete h;
      },
      hint);
}

// writeThrough(fd, chunks: Uint8Array[]) -> Promise<{ written, errno, message }>: writes the chunks one
// after another at fd's position, through to the disk without filling the page cache (file_io.h),
// on a worker thread. A failure resolves with its errno (0: none) for the caller to name the file; the process's
// exit and the environment's end stop it between 8 MiB pieces (ECANCELED).
Napi::Value WriteThrough(const Napi::CallbackInfo& info) {
  Args args(info, "writeThrough");
  const std::int64_t fd = args.count(0, "fd");
  if (args.length() < 2 || !args[1].IsArray()) throw Napi::TypeError::New(info.Env(), "writeThrough: chunks must be an array of Uint8Array");
  const Napi::Array list = args[1].As<Napi::Array>();
  auto pieces = std::make_shared<std::vector<ConstBytes>>();
  JobOptions options;
  for (std::uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Uint8Array a = as_array<Napi::Uint8Array>(list.Get(i), "writeThrough: chunks[" + std::to_string(i) + "]");
    pieces->push_back({a.Data(), a.ByteLength()});
    options.keep.push_back(a);
  }
  auto outcome = std::make_shared<WriteOutcome>();
  return run_job(
      info.Env(), "brainlatent.writeThrough",
      // (the job's flag, which the process's exit and the environment's end set: the write stops between pieces with
      // ECANCELED instead of holding the exit up until the whole file is written to a temporary never renamed)
      [=](JobContext& ctx) { *outcome = write_through(static_cast<int>(fd), *pieces, ctx.cancel_flag()); },
      [outcome](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("written", static_cast<double>(outcome->written));
        o.Set("errno", outcome->error);
        o.Set("message", outcome->message);
        return o;
      },
      std::move(options));
}

// replaceProcess(file, args): execv(file, args) — this process becomes a new program with the same
// pid, parent, stdio, environment and session (what Node 23's process.execve does). `brainlatent
// serve` runs itself again this way with the V8 flags a service needs (V8 reads them once, at start-
// up), so that a supervisor's signals reach the service itself. Returns only by throwing.
Napi::Value ReplaceProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "replaceProcess: expected (file: string, args: string[])");
  const std::string file = info[0].As<Napi::String>().Utf8Value();
  const Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (std::uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value a = list.Get(i);
    if (!a.IsString()) throw Napi::TypeError::New(env, "replaceProcess: args[" + std::to_string(i) + "]: expected a string");
    args.push_back(a.As<Napi::String>().Utf8Value());
  }
#ifdef _WIN32
  throw Napi::Error::New(env, "replaceProcess: not available on Windows");
#else
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The new program gets stdio as this one was given it: libuv made pipes non-blocking, and a
  // descriptor marked close-on-exec would vanish.
  for (int fd = 0; fd <= 2; ++fd) {
    const int fl = fcntl(fd, F_GETFL);
    if (fl != -1 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    const int fdfl = fcntl(fd, F_GETFD);
    if (fdfl != -1 && (fdfl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fdfl & ~FD_CLOEXEC);
  }
  execv(file.c_str(), argv.data());
  const int err = errno;
  Napi::Error e = Napi::Error::New(env, "replaceProcess: cannot run " + file + ": " + std::strerror(err));
  e.Set("code", Napi::String::New(env, err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : "EEXEC"));
  throw e;
#endif
}

// setJobNiceness(n): this process's engine jobs from now on compute on threads n nice steps below
// it (kit.h); 0 runs them on the engine's job threads themselves again.
Napi::Value SetJobNiceness(const Napi::CallbackInfo& info) {
  const std::int64_t n = Args(info, "setJobNiceness").count(0, "niceness");
  set_job_niceness(static_cast<int>(std::min<std::int64_t>(n, 39)));
  return info.Env().Undefined();
}

// stopJobThreads(): ends every engine job of the process and joins the engine's job threads (kit.h):
// the binding's process 'exit' listener, before Node's exit runs the libraries' exit handlers.
Napi::Value StopJobThreads(const Napi::CallbackInfo& info) {
  stop_job_threads();
  return info.Env().Undefined();
}

// setMaxExternalBytes(bytes): Node's limit for memory of ours handed to JS (buffer.constants.MAX_LENGTH), set by
// the binding at load: results past it are copied (kit.h max_external_bytes). largeResultCopies(): how many were.
Napi::Value SetMaxExternalBytes(const Napi::CallbackInfo& info) {
  set_max_external_bytes(static_cast<std::size_t>(Args(info, "setMaxExternalBytes").count(0, "bytes")));
  return info.Env().Undefined();
}
Napi::Value LargeResultCopies(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(large_result_copies().load()));
}

}  // namespace

void init_engine(Napi::Env env, Napi::Object exports) {
  linalg::blas_core();  // (OpenBLAS's core settled at load, before any job's BLAS call: blas_core.h)
  exports.Set("setMaxExternalBytes", Napi::Function::New(env, SetMaxExternalBytes, "setMaxExternalBytes"));
  exports.Set("largeResultCopies", Napi::Function::New(env, LargeResultCopies, "largeResultCopies"));
  exports.Set("createCancelToken", Napi::Function::New(env, CreateCancelToken, "createCancelToken"));
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("allocLargeBuffer", Napi::Function::New(env, AllocLargeBuffer, "allocLargeBuffer"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("replaceProcess", Napi::Function::New(env, ReplaceProcess, "replaceProcess"));
  exports.Set("writeThrough", Napi::Function::New(env, WriteThrough, "writeThrough"));
  exports.Set("setJobNiceness", Napi::Function::New(env, SetJobNiceness, "setJobNiceness"));
  exports.Set("stopJobThreads", Napi::Function::New(env, StopJobThreads, "stopJobThreads"));
}

}  // namespace brainlatent::addon
